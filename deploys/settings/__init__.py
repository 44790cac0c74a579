"""Settings of the etcd PKI: defaults, and validation of every host's data before any change.

Deploys call `load_settings()` first. It reads each host's data (inventory, group data,
`--data`, these defaults), checks it, and stops the run with a message naming the setting and
the host when something is wrong, before any operation has run.

defaults.py holds the defaults and pinned releases, model.py the typed model of one host's
settings, validation.py the reading and the inventory-wide checks, host.py what a deploy reads.
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
    RunOptions,
    Settings,
)
from etcd_step_pki.deploys.settings.model import is_dns_name, is_ip
from etcd_step_pki.deploys.settings.validation import (
    SettingsError,
    all_settings,
    ca_dns_names,
    cluster_views,
    each_cluster,
    load_settings,
    one_cluster,
    settings_for,
    time_setting,
    validate_inventory,
    validate_inventory_host,
)

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
