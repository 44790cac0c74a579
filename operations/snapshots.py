"""etcd snapshots: save one on a healthy member, restore one onto every member."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from facts.paths import ExistingPaths
from facts.shell import cleanup_on_exit, script
from operations import Commands
from operations.binaries import STAGING_DIR
from operations.etcd.member import Etcdctl, Member


@operation()
def snapshot_saved(file_name: str, *, etcdctl: Etcdctl, directory: str) -> Commands:
    """
    Save a snapshot of the cluster from this member, with its SHA-256 beside it.

    + file_name: the snapshot's name in `directory`
    + etcdctl: how this host reaches its member
    + directory: where snapshots are kept on this host

    Refused when this member's endpoint is not healthy. An existing snapshot of that name is
    kept as it is.
    """
    target = f"{directory}/{file_name}"
    present = host.get_fact(ExistingPaths, paths=[target, f"{target}.sha256"])
    if len(present) == 2:
        host.noop(f"{target} exists")
        return
    yield script(
        "set -e; install -d -m 0700 {dir}; {etcdctl} endpoint health >/dev/null 2>&1 || {{"
        ' echo "this member is not healthy: no snapshot taken" >&2; exit 1; }};'
        # A snapshot that fails half-way (a full disk) leaves nothing behind; the snapshots
        # taken before stay as they are.
        + cleanup_on_exit("rm -f {target}.part {target}.part.part {target}.sha256.part")
        + " {etcdctl} snapshot save {target}.part >/dev/null; chmod 0600 {target}.part; cd {dir};"
        " sha256sum {name}.part | sed 's/[.]part$//' > {name}.sha256.part;"
        " mv -f {target}.part {target}; mv -f {name}.sha256.part {name}.sha256",
        dir=directory,
        etcdctl=etcdctl.args,
        target=target,
        name=file_name,
    )


@operation()
def snapshot_restored(
    member: Member,
    *,
    peers: Sequence[Member],
    snapshot: str,
    sha256: str,
    cluster_token: str,
    etcdutl: str,
    owner: str = "etcd",
) -> Commands:
    """
    Replace this member's data with a snapshot, as a member of a new cluster of `peers`.

    + member: this member
    + peers: every member of the restored cluster (this one included)
    + snapshot: the snapshot file on the controller
    + sha256: its checksum, checked on the member before anything is stopped
    + cluster_token: the new cluster's `initial-cluster-token`
    + etcdutl: the etcdutl binary on the member
    + owner: the user etcd runs as

    The member is stopped and its data kept aside as `<data dir>.before-restore-<sha>`; it is
    started again by the deploy once every member is restored. A marker file makes a second
    run with the same snapshot change nothing.
    """
    marker = f"{member.data_dir}.restored-{sha256[:16]}"
    if host.get_fact(ExistingPaths, paths=[marker]):
        host.noop(f"{member.name} holds snapshot {sha256[:16]} already")
        return
    staged = f"{STAGING_DIR}/etcd-restore-{sha256[:16]}.db"
    yield script("install -d -m 0700 {d}", d=STAGING_DIR)
    yield FileUploadCommand(snapshot, staged)
    yield script(
        'set -e; f={staged}; trap \'rm -f "$f" "$f.log"\' EXIT;'
        ' printf "%s  %s\\n" {sha256} "$f" | sha256sum -c --status || {{'
        ' echo "the snapshot on the member does not match its checksum" >&2; exit 1; }};'
        " systemctl stop {unit}; rm -rf {aside}; if [ -d {data} ]; then mv {data} {aside}; fi;"
        ' {etcdutl} snapshot restore "$f" --name {name} --initial-cluster {cluster}'
        " --initial-cluster-token {token} --initial-advertise-peer-urls {peer_url}"
        ' --data-dir {data} >"$f.log" 2>&1 || {{ cat "$f.log" >&2; exit 1; }};'
        " chown -R {user}:{user} {data}; chmod 0700 {data};"
        " touch {marker}",
        staged=staged,
        sha256=sha256,
        unit=member.unit,
        data=member.data_dir,
        aside=f"{member.data_dir}.before-restore-{sha256[:16]}",
        etcdutl=etcdutl,
        name=member.name,
        cluster=",".join(f"{p.name}={p.peer_url}" for p in peers),
        token=cluster_token,
        peer_url=member.peer_url,
        user=owner,
        marker=marker,
    )
