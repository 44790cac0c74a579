"""etcd snapshots: save one on a healthy member, restore one onto every member."""

from __future__ import annotations

from collections.abc import Generator, Sequence

from pyinfra import host
from pyinfra.api import FileUploadCommand, operation

from deploys.settings import Settings
from facts.paths import ExistingPaths
from operations.etcd import Peer, etcdctl_for
from operations.shell import script


@operation()
def snapshot_saved(*, settings: Settings, file_name: str) -> Generator:
    """
    Save a snapshot of the cluster from this member, with its SHA-256 beside it.

    + settings: this member's validated settings
    + file_name: the snapshot's name in the snapshot directory

    Refused when this member's endpoint is not healthy. An existing snapshot of that name is
    kept as it is.
    """
    target = f"{settings.etcd.snapshot_dir}/{file_name}"
    present = host.get_fact(ExistingPaths, paths=[target, f"{target}.sha256"])
    if len(present) == 2:
        host.noop(f"{target} exists")
        return
    yield script(
        "set -e; install -d -m 0700 {dir}; {etcdctl} endpoint health >/dev/null 2>&1 || {{"
        ' echo "this member is not healthy: no snapshot taken" >&2; exit 1; }};'
        " {etcdctl} snapshot save {target}.part >/dev/null; chmod 0600 {target}.part;"
        " mv -f {target}.part {target}; cd {dir};"
        " sha256sum {name} > {name}.sha256",
        dir=settings.etcd.snapshot_dir,
        etcdctl=etcdctl_for(settings),
        target=target,
        name=file_name,
    )


@operation()
def snapshot_restored(
    *, settings: Settings, peers: Sequence[Peer], snapshot: str, sha256: str
) -> Generator:
    """
    Replace this member's data with a snapshot, as a member of a new cluster of `peers`.

    + settings: this member's validated settings
    + peers: every member of the inventory: the restored cluster
    + snapshot: the snapshot file on the controller
    + sha256: its checksum, checked on the member before anything is stopped

    The member is stopped and its data kept aside as `<data dir>.before-restore-<sha>`; it is
    started again by the deploy once every member is restored. A marker file makes a second
    run with the same snapshot change nothing.
    """
    marker = f"{settings.etcd.data_root}/{settings.node_name}.restored-{sha256[:16]}"
    if host.get_fact(ExistingPaths, paths=[marker]):
        host.noop(f"{settings.node_name} holds snapshot {sha256[:16]} already")
        return
    staged = f"/var/tmp/etcd-restore-{sha256[:16]}.db"
    yield FileUploadCommand(snapshot, staged)
    me = next(p for p in peers if p.host == settings.host)
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
        unit=settings.unit,
        data=settings.data_dir,
        aside=f"{settings.data_dir}.before-restore-{sha256[:16]}",
        etcdutl=settings.etcd.etcdutl,
        name=me.name,
        cluster=",".join(f"{p.name}={p.peer_url}" for p in peers),
        token=f"etcd-{settings.cluster}",
        peer_url=me.peer_url,
        user=settings.etcd_user,
        marker=marker,
    )
