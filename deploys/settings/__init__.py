"""Settings of the etcd PKI: defaults, and validation of every host's data before any change.

Deploys call `load_settings()` first. It reads each host's data (inventory, group data,
`--data`, these defaults), checks it, and stops the run with a message naming the setting and
the host when something is wrong, before any operation has run.

model.py declares each host setting once (type, constraint, default, documentation) and
options.py each per-run one, with the kinds of values of values.py; defaults.py derives
DEFAULTS from them and holds the pinned releases, reference.py the README's reference.
reading.py reads a host's data, validation.py builds each host's `Settings` (host.py: what a
deploy reads) with the inventory-wide checks, and run.py keeps a run's settings.
"""

from etcd_step_pki.deploys.settings.defaults import (
    DEFAULTS,
    ETCD_CHECKSUMS,
    STEP_CA_CHECKSUMS,
    STEP_CHECKSUMS,
)
from etcd_step_pki.deploys.settings.host import (
    Alerting,
    Backup,
    Cfssl,
    Etcd,
    Renewal,
    RootPin,
    Settings,
)
from etcd_step_pki.deploys.settings.options import RunOptions
from etcd_step_pki.deploys.settings.reading import SettingsError
from etcd_step_pki.deploys.settings.run import (
    all_settings,
    ca_dns_names,
    cluster_names,
    cluster_views,
    each_cluster,
    load_settings,
    one_cluster,
    time_setting,
    validate_inventory_host,
)
from etcd_step_pki.deploys.settings.validation import settings_for, validate_inventory
from etcd_step_pki.deploys.settings.values import is_dns_name, is_ip

__all__ = [
    "DEFAULTS",
    "ETCD_CHECKSUMS",
    "STEP_CA_CHECKSUMS",
    "STEP_CHECKSUMS",
    "Alerting",
    "Backup",
    "Cfssl",
    "Etcd",
    "Renewal",
    "RootPin",
    "RunOptions",
    "Settings",
    "SettingsError",
    "all_settings",
    "ca_dns_names",
    "cluster_names",
    "cluster_views",
    "each_cluster",
    "is_dns_name",
    "is_ip",
    "load_settings",
    "one_cluster",
    "settings_for",
    "time_setting",
    "validate_inventory",
    "validate_inventory_host",
]
