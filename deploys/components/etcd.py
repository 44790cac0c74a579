"""etcd on the members (and etcdctl on clients): install, configure, join, restart, health."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files
from pyinfra.operations.util import any_changed

from deploys.components import component
from deploys.settings import Settings, SettingsError, all_settings, load_settings
from operations.binaries import release_binaries
from operations.etcd import (
    cluster_healthy_wait,
    compacted,
    defragmented,
    member,
    member_removed,
    peers_of,
    rolling_restart,
)
from operations.snapshots import snapshot_restored, snapshot_saved
from operations.units import service_unit
from templates import render


@component("etcd")
def etcd_cluster() -> None:
    """Install etcd everywhere certificates are; run a member on every `etcd` host."""
    settings = load_settings()
    if not settings.needs_certificates:
        return
    binaries = _install(settings)
    if not settings.is_member:
        return
    files.directory(
        name="etcd data directory",
        path=settings.data_dir,
        user=settings.etcd_user,
        group=settings.etcd_user,
        mode="0700",
    )
    config = member(
        name="etcd member configuration",
        settings=settings,
        peers=peers_of(all_settings()),
        config_path=settings.member_file("conf.yml"),
    )
    unit = service_unit(
        name="etcd member unit",
        unit=settings.unit,
        content=render(
            "etcd-member.service.j2",
            member=settings.node_name,
            run_as=settings.etcd_user,
            etcd=settings.etcd.binary,
            config=settings.member_file("conf.yml"),
        ),
    )
    rolling_restart(
        name="Rolling restart after a change",
        settings=settings,
        _serial=True,
        _if=any_changed(config, unit, binaries),
    )
    service_unit(
        name="etcd member runs and starts at boot", unit=settings.unit, running=True, enabled=True
    )
    cluster_healthy_wait(name="etcd cluster is healthy", settings=settings)


@component("Restart members on new certificates")
def restart_on_new_certificates(issued: OperationMeta | None) -> None:
    """Restart each member whose certificates `issued` changed, one at a time, each waiting
    for a healthy cluster: every peer and client connection then uses the new chain."""
    settings = load_settings()
    if settings.is_member and issued is not None:
        rolling_restart(
            name="Rolling restart on new certificates",
            settings=settings,
            _serial=True,
            _if=issued.did_change,
        )


def _install(settings: Settings):
    if settings.etcd.install_from == "archive":
        return release_binaries(
            name="Install etcd", artifacts=[settings.etcd.artifact], bin_dir=settings.bin_dir
        )
    packages = ["etcd-server", "etcd-client"] if settings.is_member else ["etcd-client"]
    installed = apt.packages(name="etcd packages", packages=packages, update=True, cache_time=3600)
    if settings.is_member:
        # Debian's package starts a default member of its own: ours replaces it.
        service_unit(
            name="The package's etcd.service stays off",
            unit="etcd.service",
            running=False,
            enabled=False,
        )
    return installed


def _member_named(name: object, what: str) -> Settings:
    """The settings of the member an operator named, or a clear error before any change."""
    members = {s.host: s for s in all_settings() if s.is_member}
    if not name:
        raise SettingsError(f"{what}: name the member with --data {what}=<inventory host>")
    if name not in members:
        raise SettingsError(f"{what}: {name!r} is no host of the `etcd` group")
    return members[str(name)]


@component("Remove an etcd member")
def remove_member() -> None:
    """Take the member named by `etcd_remove_node` out of the cluster and off its host."""
    target = _member_named(host.data.get("etcd_remove_node"), "etcd_remove_node")
    if len([s for s in all_settings() if s.is_member]) < 2:
        raise SettingsError("etcd_remove_node: the cluster would have no member left")
    if host.name != target.host:
        return
    member_removed(
        name=f"Remove {target.node_name}", settings=target, peers=peers_of(all_settings())
    )


@component("etcd snapshot")
def snapshot_backup() -> None:
    """Save a snapshot on one member (`etcd_snapshot_member`, default the first) and fetch
    it with its checksum to the controller. One snapshot a day unless `etcd_snapshot_name`
    names another."""
    settings = load_settings()
    members = [s for s in all_settings() if s.is_member]
    chosen = _member_named(
        host.data.get("etcd_snapshot_member") or members[0].host, "etcd_snapshot_member"
    )
    if host.name != chosen.host:
        return
    file_name = host.data.get("etcd_snapshot_name") or (
        f"etcd-{settings.cluster}-{time.strftime('%Y%m%d', time.gmtime())}.db"
    )
    snapshot_saved(name="Save a snapshot", settings=settings, file_name=file_name)
    local = Path(settings.etcd.snapshot_local_dir)
    local.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".sha256"):
        files.get(
            name=f"Fetch {file_name}{suffix}",
            src=f"{settings.etcd.snapshot_dir}/{file_name}{suffix}",
            dest=str(local / f"{file_name}{suffix}"),
        )


@component("etcd restore")
def snapshot_restore() -> None:
    """Restore `etcd_restore_snapshot` (a file on the controller) onto every member as a
    new cluster. Confirm with `etcd_restore_confirm=<its sha256>`: all data is replaced."""
    settings = load_settings()
    snapshot = host.data.get("etcd_restore_snapshot")
    if not snapshot or not Path(str(snapshot)).is_file():
        raise SettingsError(
            f"etcd_restore_snapshot: {snapshot!r} is no snapshot file on the controller"
        )
    digest = hashlib.sha256(Path(str(snapshot)).read_bytes()).hexdigest()
    recorded = Path(f"{snapshot}.sha256")
    if recorded.exists() and recorded.read_text().split()[0] != digest:
        raise SettingsError(f"etcd_restore_snapshot: {snapshot} does not match {recorded}")
    if host.data.get("etcd_restore_confirm") != digest:
        raise SettingsError(
            "etcd_restore_confirm: restoring replaces the data of every member of "
            f"etcd-{settings.cluster}; confirm with --data etcd_restore_confirm={digest}"
        )
    if not settings.is_member:
        return
    snapshot_restored(
        name="Restore the snapshot",
        settings=settings,
        peers=peers_of(all_settings()),
        snapshot=str(snapshot),
        sha256=digest,
    )
    service_unit(name="etcd member runs", unit=settings.unit, running=True, enabled=True)
    cluster_healthy_wait(name="etcd cluster is healthy", settings=settings)


@component("etcd maintenance")
def maintenance() -> None:
    """Compact the history on the first member, then defragment members one at a time where
    enough space is free (`etcd_defrag_min_free_bytes`)."""
    settings = load_settings()
    if not settings.is_member:
        return
    first = next(s for s in all_settings() if s.is_member)
    if settings.host == first.host:
        compacted(name="Compact the history", settings=settings)
    defragmented(
        name="Defragment",
        settings=settings,
        min_free_bytes=settings.etcd.defrag_min_free_bytes,
        _serial=True,
    )
