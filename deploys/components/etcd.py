"""etcd on the members (and etcdctl on clients): install, configure, join, restart, health."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from pyinfra import host
from pyinfra.api.arguments import pop_global_arguments
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import apt, files

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.arguments import key_file
from etcd_step_pki.deploys.components.binaries import etcd_release_checked, installed_with_step
from etcd_step_pki.deploys.components.certificates import owns_data_dir
from etcd_step_pki.deploys.settings import (
    Settings,
    SettingsError,
    all_settings,
    load_settings,
    one_cluster,
)
from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdMember
from etcd_step_pki.operations import Change
from etcd_step_pki.operations.accounts import system_account
from etcd_step_pki.operations.binaries import release_binaries
from etcd_step_pki.operations.etcd.configuration import member_configuration, member_joined
from etcd_step_pki.operations.etcd.maintenance import compacted, defragmented
from etcd_step_pki.operations.etcd.releases import downgrade_enabled
from etcd_step_pki.operations.etcd.restarts import cluster_healthy_wait, rolling_restart
from etcd_step_pki.operations.snapshots import snapshot_restored, snapshot_saved
from etcd_step_pki.operations.units import UNIT_DIR, systemd_units
from etcd_step_pki.templates import render


@component("etcd")
def etcd_cluster(*, downgrading: bool = False) -> None:
    """Install etcd everywhere certificates are; run a member on every `etcd` host. With
    several clusters, call it in each turn of `each_cluster`: one cluster at a time.
    `downgrading`: etcd's downgrade to etcd_version's minor release is enabled
    (deploys/etcd_downgrade.py), so members may go one minor release down."""
    settings = load_settings()
    if not settings.needs_certificates:
        return
    binaries = _install(settings, downgrading=downgrading)
    if not settings.is_member:
        return
    if not owns_data_dir(settings):
        # After the package, which makes /var/lib/etcd its own way: root's again, and the
        # member's data directory the account's.
        system_account(
            name="etcd data directory",
            user=settings.etcd_user,
            home="/var/lib/etcd",
            private_dirs=[settings.data_dir],
        )
    me = arguments.member(settings)
    # What the running etcd read when it started: the first read of the member's state takes
    # them, for the rolling restart after it (facts/memo.py).
    started_from = [me.config_path, f"{UNIT_DIR}/{me.unit}", settings.etcd.binary]
    memo.expect(host, EtcdMember, files=started_from)
    config = member_configuration(
        name="etcd member configuration",
        member=me,
        peers=arguments.members(all_settings()),
        options=arguments.member_options(settings),
    )
    unit = systemd_units(
        name="etcd member unit",
        units=[me.unit],
        files={me.unit: member_unit(settings)},
        keep_previous=True,
    )
    rolling_restart(
        name="Rolling restart after a change",
        member=me,
        peers=arguments.members(all_settings()),
        restart_after=[config, unit, binaries],
        files=started_from,
    )
    member_joined(
        name="A new member joins the running cluster",
        member=me,
        peers=arguments.members(all_settings()),
        options=arguments.member_options(settings),
    )
    systemd_units(
        name="etcd member runs and starts at boot", units=[me.unit], running=True, enabled=True
    )
    cluster_healthy_wait(name="etcd cluster is healthy", etcdctl=me.etcdctl)


def member_unit(settings: Settings) -> str:
    """The text of a member's systemd unit."""
    me = arguments.member(settings)
    return render(
        "etcd-member.service.j2",
        member=me.name,
        run_as=settings.etcd_user,
        etcd=settings.etcd.binary,
        config=me.config_path,
        data_dir=me.data_dir,
    )


@component("etcd downgrade")
def downgrade_enabled_on_the_cluster() -> None:
    """etcd's downgrade API enabled for etcd_version's minor release, through the first
    member of the cluster, before any member gets the older binary."""
    settings = load_settings()
    if settings.etcd.install_from != "archive":
        raise SettingsError("etcd_install_from: a downgrade installs etcd's release archives")
    first = arguments.members(all_settings())[0]
    if settings.is_member and host.name == first.host:
        downgrade_enabled(
            name="etcd's downgrade enabled", member=first, target=settings.etcd.artifact.version
        )


@component("Restart members on new certificates")
def restart_on_new_certificates(issued: OperationMeta | None) -> None:
    """Restart each member whose certificates `issued` changed, one at a time, each waiting
    for a healthy cluster: every peer and client connection then uses the new chain."""
    settings = load_settings()
    if settings.is_member and issued is not None:
        rolling_restart(
            name="Rolling restart on new certificates",
            member=arguments.member(settings),
            peers=arguments.members(all_settings()),
            restart_after=[issued],
        )


def _install(settings: Settings, *, downgrading: bool = False) -> Change:
    """etcd's binaries; returns what replaced etcd in this run."""
    shared = installed_with_step(settings, "etcd")
    if shared is not None:
        return shared
    if settings.etcd.install_from == "archive":
        etcd_release_checked(settings, [settings.etcd.artifact], downgrading=downgrading)
        return release_binaries(
            name="Install etcd",
            artifacts=[settings.etcd.artifact],
            bin_dir=settings.bin_dir,
            # What a member whose upgrade does not start goes back to.
            keep_previous=["etcd"] if settings.is_member else [],
        )
    packages = ["etcd-server", "etcd-client"] if settings.is_member else ["etcd-client"]
    installed = apt.packages(name="etcd packages", packages=packages, update=True, cache_time=3600)
    if settings.is_member:
        # Debian's package starts a default member of its own: ours replaces it.
        systemd_units(
            name="The package's etcd.service stays off",
            units=["etcd.service"],
            running=False,
            enabled=False,
        )
    return installed


def member_named(name: object, what: str) -> Settings:
    """The settings of the member an operator named, or a clear error before any change."""
    members = {s.host: s for s in all_settings() if s.is_member}
    if not name:
        raise SettingsError(f"{what}: name the member with --data {what}=<inventory host>")
    if name not in members:
        raise SettingsError(f"{what}: {name!r} is no host of the `etcd` group")
    return members[str(name)]


@component("etcd snapshot")
def snapshot_backup() -> None:
    """Save a snapshot on one member (`etcd_snapshot_member`, default the first) and fetch
    it with its checksum to the controller. One snapshot a day unless `etcd_snapshot_name`
    names another."""
    one_cluster("etcd_backup.py")
    settings = load_settings()
    members = [s for s in all_settings() if s.is_member]
    chosen = member_named(
        settings.run.etcd_snapshot_member or members[0].host, "etcd_snapshot_member"
    )
    if host.name != chosen.host:
        return
    file_name = settings.run.etcd_snapshot_name or (
        f"etcd-{settings.cluster}-{time.strftime('%Y%m%d', time.gmtime())}.db"
    )
    recipient = _snapshot_recipient(settings)
    snapshot_saved(
        name="Save a snapshot",
        file_name=file_name,
        etcdctl=arguments.etcdctl(settings),
        directory=settings.etcd.snapshot_dir,
        recipient_key=recipient,
    )
    local = Path(settings.etcd.snapshot_local_dir)
    # The cluster's data: on the controller as on the member, the operator's only (0600 in
    # a 0700 directory). pyinfra writes fetched files later, at execution: the umask of the
    # run decides their mode.
    os.umask(0o077)
    local.mkdir(mode=0o700, parents=True, exist_ok=True)
    for suffix in (".gpg", ".gpg.sha256") if recipient else ("", ".sha256"):
        files.get(
            name=f"Fetch {file_name}{suffix}",
            src=f"{settings.etcd.snapshot_dir}/{file_name}{suffix}",
            dest=str(local / f"{file_name}{suffix}"),
        )


def _no_plaintext_through_temporary_files(setting: str, what: str) -> None:
    """Refused before any host is touched: a transfer of the cluster's data in the clear in
    a run that escalates privileges (`--sudo`, `--su-user`, `--doas`...). pyinfra passes such
    a transfer through a copy in the SSH user's temporary directory, which other local users
    can read."""
    arguments, _ = pop_global_arguments(host.state, host, {})
    escalation = [name for name in ("_sudo", "_su_user", "_doas", "_dzdo") if arguments.get(name)]
    if escalation:
        raise SettingsError(
            f"{setting}: {what} would pass in the clear through a temporary file that other "
            f"users of {host.name} can read ({escalation[0]}: pyinfra copies a transferred "
            "file through the SSH user's temporary directory): encrypt it (set "
            "ca_backup_recipient_key), or connect as root"
        )


def _snapshot_recipient(settings: Settings) -> str | None:
    """The public key the snapshot leaves its member encrypted to: the backups' recipient
    (`ca_backup_recipient_key`); None only when the operator asked for plaintext."""
    if settings.run.etcd_snapshot_unencrypted:
        _no_plaintext_through_temporary_files(
            "etcd_snapshot_unencrypted", "the snapshot fetched to the controller"
        )
        return None
    if not settings.backup.recipient_key:
        raise SettingsError(
            "ca_backup_recipient_key: etcd_backup.py fetches the cluster's data to the "
            "controller encrypted to the backups' recipient: set it (an armored GnuPG public "
            "key file on the controller), or run with --data etcd_snapshot_unencrypted=true "
            "to fetch the snapshot in the clear"
        )
    return key_file("ca_backup_recipient_key", settings.backup.recipient_key, "public")


@component("etcd restore")
def snapshot_restore() -> None:
    """Restore `etcd_restore_snapshot` (a file on the controller) onto every member as a
    new cluster. Confirm with `etcd_restore_confirm=<its sha256>`: all data is replaced."""
    one_cluster("etcd_restore.py")
    settings = load_settings()
    snapshot = settings.run.etcd_restore_snapshot
    if not snapshot or not Path(str(snapshot)).is_file():
        raise SettingsError(
            f"etcd_restore_snapshot: {snapshot!r} is no snapshot file on the controller"
        )
    digest = hashlib.sha256(Path(str(snapshot)).read_bytes()).hexdigest()
    recorded = Path(f"{snapshot}.sha256")
    if recorded.exists() and recorded.read_text().split()[0] != digest:
        raise SettingsError(f"etcd_restore_snapshot: {snapshot} does not match {recorded}")
    if settings.run.etcd_restore_confirm != digest:
        raise SettingsError(
            "etcd_restore_confirm: restoring replaces the data of every member of "
            f"etcd-{settings.cluster}; confirm with --data etcd_restore_confirm={digest}"
        )
    if not settings.is_member:
        return
    me = arguments.member(settings)
    snapshot_restored(
        name="Restore the snapshot",
        member=me,
        peers=arguments.members(all_settings()),
        snapshot=str(snapshot),
        sha256=digest,
        cluster_token=f"etcd-{settings.cluster}",
        etcdutl=settings.etcd.etcdutl,
        owner=settings.etcd_user,
        private_key=_restore_key(str(snapshot), settings.run.etcd_restore_private_key),
    )
    systemd_units(name="etcd member runs", units=[me.unit], running=True, enabled=True)
    cluster_healthy_wait(name="etcd cluster is healthy", etcdctl=me.etcdctl)


def _restore_key(snapshot: str, name: str | None) -> str | None:
    """The private key that decrypts an encrypted snapshot (`<name>.gpg`); None for a
    snapshot in the clear."""
    if not snapshot.endswith(".gpg"):
        _no_plaintext_through_temporary_files(
            "etcd_restore_snapshot", "the snapshot sent to every member"
        )
        return None
    return key_file("etcd_restore_private_key", name, "private")


@component("etcd maintenance")
def maintenance() -> None:
    """Compact the history on the first member, then defragment members one at a time where
    enough space is free (`etcd_defrag_min_free_bytes`). With several clusters, call it in
    each turn of `each_cluster`."""
    settings = load_settings()
    if not settings.is_member:
        return
    first = next(s for s in all_settings() if s.is_member)
    me = arguments.member(settings)
    if settings.host == first.host:
        compacted(name="Compact the history", member=me)
    defragmented(
        name="Defragment",
        member=me,
        min_free_bytes=settings.etcd.defrag_min_free_bytes,
        _serial=True,
    )
