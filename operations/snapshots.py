"""etcd snapshots: save one on a healthy member, restore one onto every member."""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, QuoteString, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.paths import ExistingPaths
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.binaries import STAGING_DIR
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.templates.scripts import script


@operation()
def snapshot_saved(
    file_name: str, *, etcdctl: Etcdctl, directory: str, recipient_key: str | None = None
) -> Commands:
    """
    Save a snapshot of the cluster from this member, with its SHA-256 beside it.

    + file_name: the snapshot's name in `directory`
    + etcdctl: how this host reaches its member
    + directory: where snapshots are kept on this host
    + recipient_key: an armored GnuPG public key: a copy of the snapshot encrypted to it is
      made beside it (`<file_name>.gpg`, with its own `.sha256`), the copy to take off the host

    Refused when this member's endpoint is not healthy. An existing snapshot of that name is
    kept as it is.
    """
    target = f"{directory}/{file_name}"
    plain = [target, f"{target}.sha256"]
    sealed = [f"{target}.gpg", f"{target}.gpg.sha256"] if recipient_key else []
    present = memo.get_fact(host, ExistingPaths, paths=[*plain, *sealed])
    if len(present) == len(plain) + len(sealed):
        host.noop(f"{target} exists" + (", encrypted too" if sealed else ""))
        return
    if not all(path in present for path in plain):
        yield _save(file_name, directory, etcdctl)
    if recipient_key:
        yield FileUploadCommand(StringIO(recipient_key), f"{directory}/.recipient.asc")
        yield script("etcd-snapshot-encrypt.sh.j2", directory=directory, name=file_name)


def _save(file_name: str, directory: str, etcdctl: Etcdctl) -> StringCommand:
    """The snapshot taken on a healthy member only, complete or not at all."""
    return script(
        "etcd-snapshot-save.sh.j2", directory=directory, name=file_name, etcdctl=etcdctl.args
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
    private_key: str | None = None,
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
    + private_key: an armored GnuPG private key, for a snapshot encrypted by `snapshot_saved`:
      it reaches the member on standard input only and decrypts the snapshot there

    The member is stopped and its data kept aside as `<data dir>.before-restore-<sha>`; it is
    started again by the deploy once every member is restored. A marker file makes a second
    run with the same snapshot change nothing.
    """
    marker = f"{member.data_dir}.restored-{sha256[:16]}"
    if memo.get_fact(host, ExistingPaths, paths=[marker]):
        host.noop(f"{member.name} holds snapshot {sha256[:16]} already")
        return
    staged = f"{STAGING_DIR}/etcd-restore-{sha256[:16]}.db"
    yield StringCommand("install", "-d", "-m", "0700", QuoteString(STAGING_DIR))
    yield FileUploadCommand(snapshot, f"{staged}.gpg" if private_key else staged)
    command = script(
        "etcd-snapshot-restore.sh.j2",
        encrypted=private_key is not None,
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
    if private_key is None:
        yield command
    else:
        yield RunTimeStep(_with_key, member.name, command, private_key)


def _with_key(state: State, host: Remote, name: str, command: StringCommand, key: str) -> bool:
    """Run time: the restore with the private key on its standard input only."""
    ok, out = host.run(command, stdin=key)
    if not ok:
        return host.fail(f"{name}: {out.stderr.strip()}")
    return True
