"""Each host's `Settings`, derived from its validated settings and the inventory.

After a host's data is read (reading.py) come the checks that need the inventory
(cert-managers, groups, unique member names, a member's address, ports of a host's several
members), and the host's view of each cluster is built. Every problem is a SettingsError
naming the setting and the host.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory

from etcd_step_pki.deploys.settings.defaults import (
    ETCD_CHECKSUMS,
    STEP_CA_CHECKSUMS,
    STEP_CHECKSUMS,
)
from etcd_step_pki.deploys.settings.galera import with_galera
from etcd_step_pki.deploys.settings.host import (
    Alerting,
    Backup,
    Cfssl,
    Etcd,
    Renewal,
    RootKey,
    RootPin,
    Settings,
)
from etcd_step_pki.deploys.settings.model import HostSettings
from etcd_step_pki.deploys.settings.options import RunOptions
from etcd_step_pki.deploys.settings.reading import (
    SettingsError,
    in_cluster,
    invalid,
    memberships,
    own_ports,
    read_host,
)
from etcd_step_pki.deploys.settings.values import checksums_for, is_dns_name, is_ip
from etcd_step_pki.operations.binaries import Artifact
from etcd_step_pki.operations.ca import Durations
from etcd_step_pki.operations.monitoring import Thresholds
from etcd_step_pki.operations.profiles import CLIENT_MARK_SUFFIX
from etcd_step_pki.templates import url_host

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

G = TypeVar("G", bound="DataclassInstance")
GROUPS = ("etcd", "etcd_cert_managers", "etcd_clients", "prometheus")
PINNED = {"step": STEP_CHECKSUMS, "step-ca": STEP_CA_CHECKSUMS, "etcd": ETCD_CHECKSUMS}


def _artifact(raw: HostSettings, binary: str) -> Artifact:
    prefix = binary.replace("-", "_")
    version: str = getattr(raw, f"{prefix}_version")
    table = getattr(raw, f"{prefix}_checksums")
    checksums = checksums_for(PINNED[binary] if table is None else table, version)
    source, mirror, local = raw.artifact_source, raw.artifact_mirror_url, raw.artifact_dir
    return Artifact(binary, version, checksums, source, mirror, local)


def _addresses(host: Host, data: dict[str, object], raw: HostSettings) -> tuple[str, ...]:
    """`node_addresses`, or else the SSH hostname when that is an IP address."""
    if raw.node_addresses is not None:
        return raw.node_addresses
    ssh_host = str(data.get("ssh_hostname") or host.name)
    return (ssh_host,) if is_ip(ssh_host) else ()


def _refuse_client_marks(host: Host, raw: HostSettings) -> None:
    """No host names what the CA adds to open a cluster's client port: with it, any of the
    host's certificates (its peer certificate, another cluster's) would open that port."""
    for key, name in (
        ("inventory name", host.name),
        *(("cert_extra_sans", n) for n in raw.cert_extra_sans),
    ):
        if name.lower().rstrip(".").endswith(CLIENT_MARK_SUFFIX):
            raise invalid(
                host.name, key, f"{name!r} ends in {CLIENT_MARK_SUFFIX}, which only the CA gives"
            )


def _node_name(host: Host, groups: tuple[str, ...], raw: HostSettings, cluster: str) -> str:
    """etcd-<cluster>-<index> for members (the index set, else read from a name
    etcd-<one of its clusters>-<index>); for clients the short host name in their first
    cluster, <short name>-<cluster> in the others."""
    if "etcd" not in groups:
        short = host.name.split(".")[0]
        return short if cluster == memberships(raw)[0] else f"{short}-{cluster}"
    index = in_cluster(host, raw, cluster).etcd_member_index
    if index is None:
        names = dict.fromkeys((cluster, raw.etcd_cluster_name, *memberships(raw)))
        pattern = "|".join(re.escape(name) for name in names)
        match = re.match(rf"^etcd-(?:{pattern})-(\d+)(?:\.|$)", host.name)
        if not match:
            raise invalid(
                host.name,
                "etcd_member_index",
                f"the name is not etcd-{cluster}-<N>: set the member's index",
            )
        index = int(match.group(1))
        if index < 1:
            raise invalid(host.name, "etcd_member_index", f"{index!r} is not a positive integer")
    return f"etcd-{cluster}-{index}"


def _grouped(group: type[G], raw: HostSettings, prefix: str, /, **derived: Any) -> G:
    """One of host.py's groups of settings: each field is the setting `<prefix><field>`,
    unless it is derived otherwise (`derived`), so that no setting is named twice."""
    values = {
        item.name: getattr(raw, prefix + item.name)
        for item in fields(group)
        if item.name not in derived
    }
    return group(**values, **derived)


def _etcd(raw: HostSettings) -> Etcd:
    return _grouped(
        Etcd,
        raw,
        "etcd_",
        artifact=_artifact(raw, "etcd"),
        bin_dir="/usr/bin" if raw.etcd_install_from == "package" else raw.bin_dir,
        feature_gates=tuple(sorted(raw.etcd_feature_gates.items())),
    )


def _beside_root_record(root_record: str, suffix: str) -> str:
    """A controller file kept with the root's record: its name, `suffix` for `root-sha256`."""
    return re.sub(r"(\.?root-sha256)?$", "", root_record, count=1) + suffix


def _backup(raw: HostSettings, root_record: str) -> Backup:
    signer = _beside_root_record(root_record, ".backup-signer.asc")
    prefix = raw.ca_backup_prefix.strip("/")
    return _grouped(Backup, raw, "ca_backup_", prefix=prefix, signer_record=signer)


def _thresholds(raw: HostSettings) -> Thresholds:
    """The alert thresholds: each is the setting `alert_<threshold>`."""
    return _grouped(Thresholds, raw, "alert_")


def _run_options(raw: HostSettings) -> RunOptions:
    """The host's per-run settings, already validated with the others."""
    return RunOptions.model_construct(
        **{name: getattr(raw, name) for name in RunOptions.model_fields}
    )


def _beside_inventory(host: Host, suffix: str) -> str:
    """`<inventory>.<suffix>` beside the inventory file of the run (the pyinfra argument
    whose name is a group of every host), or in the working directory."""
    for argument in sys.argv[1:]:
        path = Path(argument)
        if path.suffix == ".py" and path.stem in host.groups and path.is_file():
            return str(path.with_name(f"{path.stem}.{suffix}"))
    return str(Path.cwd() / f"inventory.{suffix}")


def inventory_clusters(inventory: Inventory) -> tuple[str, ...]:
    """Every cluster of the inventory: each host's, in inventory order."""
    found: dict[str, None] = {}
    for item in inventory:
        found.update(dict.fromkeys(memberships(read_host(item, item.data.dict()))))
    return tuple(found)


def settings_for(
    host: Host, inventory: Inventory, cluster: str | None = None,
    clusters: tuple[str, ...] | None = None,
) -> Settings:  # fmt: skip
    """Validate one host's data; raises SettingsError naming the setting and the host.
    The host's view of `cluster` (default its first), of the inventory's `clusters`."""
    managers = [h.name for h in inventory.get_group("etcd_cert_managers", [])]
    if not managers:
        raise SettingsError(
            "no primary cert-manager: the inventory needs a group `etcd_cert_managers` "
            "whose first host runs step-ca"
        )
    if not (is_dns_name(host.name) or is_ip(host.name)):
        raise invalid(
            repr(host.name),
            "inventory host name",
            "not a DNS name or an IP address: host names become member and file names",
        )
    data = host.data.dict()
    base = read_host(host, data)
    own_clusters = memberships(base)
    cluster = cluster or own_clusters[0]
    own_ports(host, base)
    raw = in_cluster(host, base, cluster)
    if raw.ca_active is not None:
        if raw.ca_active not in managers:
            raise invalid(host.name, "ca_active", f"{raw.ca_active!r} is no host of {GROUPS[1]}")
        managers = [raw.ca_active, *(m for m in managers if m != raw.ca_active)]
    groups = tuple(g for g in host.groups if g in GROUPS)
    if not groups:
        raise invalid(host.name, "groups", f"the host is in none of the groups {GROUPS}")
    _refuse_client_marks(host, raw)
    addresses = _addresses(host, data, raw)
    if "etcd" in groups and not addresses:
        raise invalid(
            host.name,
            "node_addresses",
            "an etcd member needs the IP address it listens on (its SSH hostname is no IP)",
        )
    root_record = raw.step_ca_root_record or _beside_inventory(
        host, f"{raw.etcd_cluster_name}.root-sha256"
    )
    home = _node_name(host, groups, base, own_clusters[0]) if "etcd" in groups else None
    return Settings(
        host=host.name,
        groups=groups,
        cluster=cluster,
        memberships=tuple((name, _node_name(host, groups, base, name)) for name in own_clusters)
        if ("etcd" in groups or "etcd_clients" in groups)
        else (),
        clusters=clusters or inventory_clusters(inventory),
        ca_cluster=raw.etcd_cluster_name,
        primary=managers[0],
        backups=tuple(managers[1:]),
        step=_artifact(raw, "step"),
        step_ca=_artifact(raw, "step-ca"),
        bin_dir=raw.bin_dir,
        ca_name=raw.step_ca_name,
        ca_url=raw.step_ca_url or f"https://{url_host(managers[0])}:{raw.step_ca_port}",
        ca_port=raw.step_ca_port,
        ca_user=raw.step_ca_user,
        ca_dns_names=raw.step_ca_dns_names,
        ca_provisioner=raw.step_ca_provisioner,
        root_pin=RootPin(raw.step_ca_root_fingerprint, root_record),
        # Active-active: step-ca's records in the Galera cluster's MariaDB.
        ca_db_type="mysql" if raw.ca_ha == "active-active" else raw.step_ca_db_type,
        ca_path=raw.step_ca_path,
        durations=Durations(
            raw.step_cert_default_duration, raw.step_cert_max_duration, raw.step_cert_min_duration
        ),
        intermediate_duration=raw.step_ca_intermediate_duration,
        superseded_retention_days=raw.ca_superseded_retention_days,
        root_key=RootKey(
            raw.ca_root_key_offline, _beside_root_record(root_record, ".root-key.gpg")
        ),
        addresses=addresses,
        node_name=_node_name(host, groups, base, cluster)
        if cluster in own_clusters
        else (home or host.name.split(".")[0]),
        etcd_user=raw.etcd_user,
        ssl_dir=raw.ssl_dir,
        step_path=raw.step_path,
        extra_sans=raw.cert_extra_sans,
        key_type=raw.cert_key_type,
        renewal=_grouped(
            Renewal,
            raw,
            "renewal_",
            metrics_dir=raw.metrics_textfile_dir,
            probe_interval=raw.ca_probe_interval,
        ),
        etcd=_etcd(raw),
        cfssl=_grouped(Cfssl, raw, "cfssl_"),
        backup=_backup(raw, root_record),
        alerting=Alerting(
            config=raw.prometheus_config,
            rules_file=raw.prometheus_rules_file,
            service=raw.prometheus_service,
            thresholds=_thresholds(raw),
        ),
        run=_run_options(raw),
        run_lock_wait=raw.run_lock_wait,
        ca_urls=tuple(f"https://{url_host(m)}:{raw.step_ca_port}" for m in managers)
        if raw.ca_ha == "active-active" and not raw.step_ca_url
        else (),
        ha=raw.ca_ha,
        galera_arbitrator=raw.ca_galera_arbitrator,
    )


@dataclass(frozen=True)
class RunSettings:
    """Every host's settings in a run: a view of each host in each cluster of the inventory
    (`views[cluster][host]`), and each host's first cluster."""

    clusters: tuple[str, ...]
    views: dict[str, dict[str, Settings]]
    home: dict[str, str]

    def host_settings(self, name: str) -> Settings:
        """A host's view of its first cluster: the one a host-wide step reads."""
        return self.views[self.home[name]][name]


def validate_inventory(inventory: Inventory) -> dict[str, Settings]:
    """Every host's settings (its view of its first cluster); the first bad one stops the
    run. Member names are unique in each cluster."""
    run = validate_run(inventory)
    return {name: run.host_settings(name) for name in run.home}


def validate_run(inventory: Inventory) -> RunSettings:
    """Every host's view of every cluster of the inventory, validated."""
    clusters = inventory_clusters(inventory)
    views = {
        cluster: {h.name: settings_for(h, inventory, cluster, clusters) for h in inventory}
        for cluster in clusters
    }
    views = with_galera(views)
    for hosts in views.values():
        seen: dict[str, str] = {}
        for name, item in hosts.items():
            if not item.needs_certificates:
                continue
            other = seen.setdefault(item.node_name, name)
            if other != name:
                raise invalid(
                    name,
                    "etcd_member_index",
                    f"{item.node_name} is also the name of {other}: names must be unique",
                )
    home = {
        h.name: next((c for c, _ in views[clusters[0]][h.name].memberships), clusters[0])
        for h in inventory
    }
    run = RunSettings(clusters, views, home)
    named = named_cluster(run)
    if named is not None and named not in clusters:
        raise SettingsError(
            f"invalid setting `etcd_cluster`: {named!r} is no cluster of the inventory "
            f"({', '.join(clusters)})"
        )
    return run


def named_cluster(run: RunSettings) -> str | None:
    """The cluster named by `etcd_cluster` (given to the whole run with --data)."""
    return run.host_settings(next(iter(run.home))).run.etcd_cluster
