"""Validation of every host's settings, once a run and before any host is touched.

Each host's data is read once (`host.data.dict()`: override, host, group, global and deploy
data), laid over DEFAULTS and checked by the model; pyinfra's own data (global arguments such
as `_sudo`, connector data such as `ssh_user`) is left to pyinfra, any other unknown name is
refused. Then come the checks that need the inventory (cert-managers, groups, unique member
names, a member's address), and the host's `Settings` is derived. Every problem is a
`SettingsError` naming the setting and the host.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pyinfra import host, state
from pyinfra.api.connectors import get_all_connectors
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory
from pyinfra.context import ctx_state

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
from etcd_step_pki.deploys.settings.model import HostSettings, checksums_for, is_ip, parse_time
from etcd_step_pki.operations.binaries import Artifact
from etcd_step_pki.operations.ca import Durations
from etcd_step_pki.operations.monitoring import Thresholds

GROUPS = ("etcd", "etcd_cert_managers", "etcd_clients", "prometheus")
# Connectors whose data pyinfra reads by prefix (`ssh_user`), installed or not (winrm).
CONNECTOR_PREFIXES = (
    "ssh", "local", "docker", "chroot", "winrm", "vagrant", "terraform", "dockerssh", "podman",
)  # fmt: skip
PINNED = {"step": STEP_CHECKSUMS, "step-ca": STEP_CA_CHECKSUMS, "etcd": ETCD_CHECKSUMS}


class SettingsError(PyinfraError):
    """Bad configuration: raised before any host is changed."""


def invalid(host_name: str, setting: str, problem: str) -> SettingsError:
    """The one form of a settings error, so that the setting and the host are always named."""
    return SettingsError(f"invalid setting `{setting}` for host {host_name}: {problem}")


@functools.cache
def _pyinfra_data() -> tuple[frozenset[str], tuple[str, ...]]:
    """The data names the installed connectors declare, and the connectors' name prefixes."""
    connectors = get_all_connectors()
    names = frozenset(
        name for connector in connectors.values() for name in getattr(connector, "data_meta", {})
    )
    return names, tuple(f"{prefix}_" for prefix in {*CONNECTOR_PREFIXES, *connectors})


def _is_pyinfra_data(name: object) -> bool:
    """pyinfra's own data: global arguments (`_sudo`) and connector data (`ssh_port`)."""
    names, prefixes = _pyinfra_data()
    return isinstance(name, str) and (
        name.startswith("_") or name in names or name.startswith(prefixes)
    )


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(HostSettings.model_fields), n=1)
    if close:
        return f"unknown setting; did you mean {close[0]}?"
    return "unknown setting, and no setting has a similar name"


# pydantic's type errors in the words of the other checks (strict: nothing is converted).
_WRONG_TYPE = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "string_type": "a string",
    "dict_type": "a mapping",
    "tuple_type": "a list",
}


def _problem(error: ErrorDetails) -> tuple[str, str]:
    """The setting and the problem of one of pydantic's errors, in the words of the checks."""
    context = error.get("ctx") or {}
    cause = context.get("error")  # what a validator raised, Invalid naming its setting
    setting = getattr(cause, "setting", None) or str(error["loc"][0] if error["loc"] else "")
    if error["type"] == "extra_forbidden":
        return setting, _unknown(setting)
    if cause is not None:
        return setting, str(cause)
    if error["type"] == "literal_error":
        return setting, f"{error['input']!r} is not {context['expected']}"
    if error["type"] in _WRONG_TYPE:
        return setting, f"{error['input']!r} is not {_WRONG_TYPE[error['type']]}"
    message = error["msg"]
    return setting, f"{error['input']!r}: {message[:1].lower()}{message[1:]}"


def _read(host: Host, data: dict[str, object]) -> HostSettings:
    """The host's data (without pyinfra's own) over DEFAULTS, validated. An unknown name is
    reported first: a misspelt setting is the likelier mistake."""
    own = {name: value for name, value in data.items() if not _is_pyinfra_data(name)}
    try:
        return HostSettings.model_validate({**DEFAULTS, **own})
    except ValidationError as error:
        first = min(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise invalid(host.name, *_problem(first)) from None


def memberships(raw: HostSettings) -> tuple[str, ...]:
    """The host's clusters: those of `etcd_clusters`, else `etcd_cluster_name`."""
    return tuple(raw.etcd_clusters) if raw.etcd_clusters else (raw.etcd_cluster_name,)


def _in_cluster(host: Host, raw: HostSettings, cluster: str) -> HostSettings:
    """The host's settings in one of its clusters: its own values for that cluster
    (`etcd_clusters`) over the host's, checked again together."""
    own = (raw.etcd_clusters or {}).get(cluster)
    if not own:
        return raw
    try:
        return HostSettings.model_validate({**raw.model_dump(), **own})
    except ValidationError as error:
        setting, problem = _problem(error.errors()[0])
        raise invalid(host.name, "etcd_clusters", f"{cluster}: {setting}: {problem}") from None


def _own_ports(host: Host, raw: HostSettings) -> None:
    """A host's members of several clusters each listen on ports of their own."""
    if "etcd" not in host.groups:
        return
    taken = {raw.step_ca_port: "step_ca_port"}
    for cluster in memberships(raw):
        mine = _in_cluster(host, raw, cluster)
        for setting in ("etcd_client_port", "etcd_peer_port", "etcd_metrics_port"):
            port = getattr(mine, setting)
            if port is None:
                continue
            if port in taken:
                raise invalid(
                    host.name,
                    "etcd_clusters",
                    f"{cluster}: {setting} {port} is also {taken[port]}: give each cluster "
                    "its own etcd_client_port, etcd_peer_port and etcd_metrics_port",
                )
            taken[port] = f"{setting} of {cluster}"


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


def _node_name(host: Host, groups: tuple[str, ...], raw: HostSettings, cluster: str) -> str:
    """etcd-<cluster>-<index> for members (the index set, else read from a name
    etcd-<one of its clusters>-<index>); for clients the short host name in their first
    cluster, <short name>-<cluster> in the others."""
    if "etcd" not in groups:
        short = host.name.split(".")[0]
        return short if cluster == memberships(raw)[0] else f"{short}-{cluster}"
    index = _in_cluster(host, raw, cluster).etcd_member_index
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


def _etcd(raw: HostSettings) -> Etcd:
    return Etcd(
        artifact=_artifact(raw, "etcd"),
        install_from=raw.etcd_install_from,
        bin_dir="/usr/bin" if raw.etcd_install_from == "package" else raw.bin_dir,
        client_port=raw.etcd_client_port,
        peer_port=raw.etcd_peer_port,
        metrics_port=raw.etcd_metrics_port,
        data_root=raw.etcd_data_root,
        config_dir=raw.etcd_config_dir,
        tls_min_version=raw.etcd_tls_min_version,
        cipher_suites=raw.etcd_cipher_suites,
        compaction_retention=raw.etcd_compaction_retention,
        feature_gates=tuple(sorted(raw.etcd_feature_gates.items())),
        defrag_min_free_bytes=raw.etcd_defrag_min_free_bytes,
        snapshot_dir=raw.etcd_snapshot_dir,
        snapshot_local_dir=raw.etcd_snapshot_local_dir,
    )


def _backup(raw: HostSettings, root_record: str) -> Backup:
    return Backup(
        bucket=raw.ca_backup_bucket,
        prefix=raw.ca_backup_prefix.strip("/"),
        endpoint_url=raw.ca_backup_endpoint_url,
        region=raw.ca_backup_region,
        recipient_key=raw.ca_backup_recipient_key,
        encryption=raw.ca_backup_encryption,
        kms_key_id=raw.ca_backup_kms_key_id,
        kms_endpoint_url=raw.ca_backup_kms_endpoint_url,
        retention_days=raw.ca_backup_retention_days,
        signer_record=re.sub(r"(\.?root-sha256)?$", "", root_record, count=1)
        + ".backup-signer.asc",
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
        found.update(dict.fromkeys(memberships(_read(item, item.data.dict()))))
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
    data = host.data.dict()
    base = _read(host, data)
    own_clusters = memberships(base)
    cluster = cluster or own_clusters[0]
    _own_ports(host, base)
    raw = _in_cluster(host, base, cluster)
    if raw.ca_active is not None:
        if raw.ca_active not in managers:
            raise invalid(host.name, "ca_active", f"{raw.ca_active!r} is no host of {GROUPS[1]}")
        managers = [raw.ca_active, *(m for m in managers if m != raw.ca_active)]
    groups = tuple(g for g in host.groups if g in GROUPS)
    if not groups:
        raise invalid(host.name, "groups", f"the host is in none of the groups {GROUPS}")
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
        ca_url=raw.step_ca_url or f"https://{managers[0]}:{raw.step_ca_port}",
        ca_port=raw.step_ca_port,
        ca_user=raw.step_ca_user,
        ca_dns_names=raw.step_ca_dns_names,
        ca_provisioner=raw.step_ca_provisioner,
        root_pin=RootPin(raw.step_ca_root_fingerprint, root_record),
        ca_db_type=raw.step_ca_db_type,
        ca_path=raw.step_ca_path,
        durations=Durations(
            raw.step_cert_default_duration, raw.step_cert_max_duration, raw.step_cert_min_duration
        ),
        intermediate_duration=raw.step_ca_intermediate_duration,
        addresses=addresses,
        node_name=_node_name(host, groups, base, cluster)
        if cluster in own_clusters
        else (home or host.name.split(".")[0]),
        etcd_user=raw.etcd_user,
        ssl_dir=raw.ssl_dir,
        step_path=raw.step_path,
        extra_sans=raw.cert_extra_sans,
        key_type=raw.cert_key_type,
        renewal=Renewal(
            enabled=raw.renewal_enabled,
            on_calendar=raw.renewal_on_calendar,
            randomized_delay=raw.renewal_randomized_delay,
            expires_in=raw.renewal_expires_in,
            metrics_dir=raw.metrics_textfile_dir,
        ),
        etcd=_etcd(raw),
        cfssl=Cfssl(
            raw.cfssl_peer_ca, raw.cfssl_client_ca, raw.cfssl_cert_name, raw.cfssl_key_name
        ),
        backup=_backup(raw, root_record),
        alerting=Alerting(
            config=raw.prometheus_config,
            rules_file=raw.prometheus_rules_file,
            service=raw.prometheus_service,
            thresholds=Thresholds(
                certificate_expiry_days=raw.alert_certificate_expiry_days,
                ca_expiry_days=raw.alert_ca_expiry_days,
                renewal_overdue_after=raw.alert_renewal_overdue_after,
                metrics_stale_after=raw.alert_metrics_stale_after,
                etcd_job=raw.alert_etcd_job,
                etcd_leader_changes=raw.alert_etcd_leader_changes,
                etcd_grpc_failed_percent=raw.alert_etcd_grpc_failed_percent,
                etcd_grpc_failed_critical_percent=raw.alert_etcd_grpc_failed_critical_percent,
                etcd_grpc_slow_seconds=raw.alert_etcd_grpc_slow_seconds,
                etcd_peer_rtt_seconds=raw.alert_etcd_peer_rtt_seconds,
                etcd_proposals_failed_per_second=raw.alert_etcd_proposals_failed_per_second,
                etcd_fsync_seconds=raw.alert_etcd_fsync_seconds,
                etcd_fsync_critical_seconds=raw.alert_etcd_fsync_critical_seconds,
                etcd_commit_seconds=raw.alert_etcd_commit_seconds,
                etcd_quota_percent=raw.alert_etcd_quota_percent,
                etcd_fragmentation_ratio=raw.alert_etcd_fragmentation_ratio,
            ),
        ),
        run=RunOptions(**{field.name: getattr(raw, field.name) for field in fields(RunOptions)}),
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
    named = _named(run)
    if named is not None and named not in clusters:
        raise SettingsError(
            f"invalid setting `etcd_cluster`: {named!r} is no cluster of the inventory "
            f"({', '.join(clusters)})"
        )
    return run


def _named(run: RunSettings) -> str | None:
    """The cluster named by `etcd_cluster` (given to the whole run with --data)."""
    return run.host_settings(next(iter(run.home))).run.etcd_cluster


# The run whose settings were validated (its State, kept so that it is not mistaken for a
# later one) and every host's settings: validated once a run.
_validated: dict[str, tuple[object, RunSettings]] = {}
# The cluster of the turn of `each_cluster` being planned; None outside one.
_turn: ContextVar[str | None] = ContextVar("etcd_cluster_turn", default=None)


def _current_run() -> RunSettings | None:
    run = _validated.get("run")
    return run[1] if run is not None and run[0] is ctx_state.get() else None


def _run_settings() -> RunSettings:
    settings = _current_run()
    if settings is None:
        settings = validate_run(state.inventory)
        _validated["run"] = (ctx_state.get(), settings)
    return settings


def _chosen(run: RunSettings) -> str | None:
    """The cluster of this part of the run: the turn of `each_cluster`, else the one named
    by `etcd_cluster`, else None (each host's first)."""
    return _turn.get() or _named(run)


def load_settings() -> Settings:
    """The current host's settings, after checking every host of the inventory once a run:
    its view of the cluster of this part of the run (`each_cluster`, `etcd_cluster`), else of
    its first cluster."""
    run = _run_settings()
    cluster = _chosen(run)
    return run.views[cluster][host.name] if cluster else run.host_settings(host.name)


def all_settings() -> list[Settings]:
    """Every host's settings (validated once a run), in inventory order, as load_settings
    gives them."""
    run = _run_settings()
    cluster = _chosen(run)
    if cluster:
        return list(run.views[cluster].values())
    return [run.host_settings(name) for name in run.home]


def each_cluster() -> Iterator[str]:
    """Every cluster of the inventory in turn, the same on every host (pyinfra's loop keeps
    each turn's operations apart and in line across hosts); in each turn, load_settings and
    all_settings give that cluster's views. With `etcd_cluster` set, that cluster alone."""
    run = _run_settings()
    named = _named(run)
    for cluster in host.loop([named] if named else list(run.clusters)):
        turn = _turn.set(cluster)
        try:
            yield cluster
        finally:
            _turn.reset(turn)


def cluster_views() -> list[Settings]:
    """The current host's view of each of its clusters (none for a cert-manager only)."""
    run = _run_settings()
    mine = run.host_settings(host.name)
    return [run.views[cluster][host.name] for cluster, _ in mine.memberships]


def one_cluster(deploy: str) -> str:
    """The cluster a deploy that acts on one cluster acts on: the inventory's only one, or
    the one named by `etcd_cluster`; refused when several are and none is named."""
    run = _run_settings()
    cluster = _chosen(run)
    if cluster:
        return cluster
    if len(run.clusters) > 1:
        raise SettingsError(
            f"etcd_cluster: {deploy} acts on one cluster and the inventory has several "
            f"({', '.join(run.clusters)}): name it with --data etcd_cluster=<name>"
        )
    return run.clusters[0]


def validate_inventory_host(inventory: Inventory, name: str) -> Settings:
    """One host's settings: from this run's validation if done, else validated now."""
    settings = _current_run()
    if settings is not None:
        return settings.host_settings(name)
    return settings_for(inventory.get_host(name), inventory)


def ca_dns_names(settings: Settings) -> list[str]:
    """Names and addresses the CA's TLS certificate covers, so any cert-manager can take over."""
    inventory = state.inventory
    names = [urlsplit(settings.ca_url).hostname or ""]
    for name in (settings.primary, *settings.backups):
        names.append(name)
        names.extend(validate_inventory_host(inventory, name).addresses)
    names.extend(settings.ca_dns_names)
    names.extend(["localhost", "127.0.0.1"])
    return list(dict.fromkeys(n for n in names if n))


def time_setting(key: str) -> float:
    """A day-2 deploy's point in time (`renew_before`, `rotate_before`): an ISO 8601 time
    with a time zone, validated with the other settings, as seconds since the epoch."""
    text = getattr(load_settings().run, key)
    if text is None:
        raise invalid(host.name, key, "not set: give an ISO 8601 time such as 2026-11-28T06:00:00Z")
    return parse_time(text)
