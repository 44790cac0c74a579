"""etcd snapshots: save one on a healthy member, restore one onto every member."""

from __future__ import annotations

from collections.abc import Sequence
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts.paths import ExistingPaths
from etcd_step_pki.facts.shell import cleanup_on_exit, script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.binaries import STAGING_DIR
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.remote import Remote, RunTimeStep

# GnuPG in a home of its own under /run (tmpfs), removed however the shell ends.
_GPG_HOME = (
    'h=$(mktemp -d /run/etcd-step-pki-gpg.XXXXXX); g="gpg --homedir $h --batch --quiet --no-tty";'
)
# A copy of the snapshot encrypted to the recipient's public key (uploaded beside it: it is
# public), with its own SHA-256: what leaves the member.
_ENCRYPT = (
    "set -e; umask 077; cd {dir}; "
    + _GPG_HOME
    + cleanup_on_exit('rm -rf "$h" {name}.gpg.part {name}.gpg.sha256.part .recipient.asc')
    + " $g --trust-model always --recipient-file .recipient.asc --output {name}.gpg.part"
    " --encrypt {name}; sha256sum {name}.gpg.part | sed 's/[.]part$//' > {name}.gpg.sha256.part;"
    " mv -f {name}.gpg.part {name}.gpg; mv -f {name}.gpg.sha256.part {name}.gpg.sha256"
)


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
    present = host.get_fact(ExistingPaths, paths=[*plain, *sealed])
    if len(present) == len(plain) + len(sealed):
        host.noop(f"{target} exists" + (", encrypted too" if sealed else ""))
        return
    if not all(path in present for path in plain):
        yield _save(target, file_name, directory, etcdctl)
    if recipient_key:
        yield FileUploadCommand(StringIO(recipient_key), f"{directory}/.recipient.asc")
        yield script(_ENCRYPT, dir=directory, name=file_name)


def _save(target: str, file_name: str, directory: str, etcdctl: Etcdctl) -> StringCommand:
    return script(
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
    if host.get_fact(ExistingPaths, paths=[marker]):
        host.noop(f"{member.name} holds snapshot {sha256[:16]} already")
        return
    staged = f"{STAGING_DIR}/etcd-restore-{sha256[:16]}.db"
    yield script("install -d -m 0700 {d}", d=STAGING_DIR)
    yield FileUploadCommand(snapshot, f"{staged}.gpg" if private_key else staged)
    command = script(
        (_DECRYPT if private_key else _CHECK) + _RESTORE,
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


# What the controller sent is checked against its checksum before anything is stopped.
_CHECK = (
    "set -e; umask 077; f={staged}; "
    + cleanup_on_exit('rm -f "$f" "$f.log"')
    + ' printf "%s  %s\\n" {sha256} "$f" | sha256sum -c --status || {{'
    ' echo "the snapshot on the member does not match its checksum" >&2; exit 1; }};'
)
# An encrypted snapshot: checked, then decrypted into the private staging directory with the
# key (on stdin) in a GnuPG home of its own (GnuPG authenticates what it decrypts).
_DECRYPT = (
    "set -e; umask 077; f={staged}; "
    + _GPG_HOME
    + cleanup_on_exit('rm -rf "$h" "$f.gpg" "$f" "$f.log"')
    + ' printf "%s  %s\\n" {sha256} "$f.gpg" | sha256sum -c --status || {{'
    ' echo "the snapshot on the member does not match its checksum" >&2; exit 1; }};'
    ' $g --import 2>/dev/null; if ! $g --output "$f" --decrypt "$f.gpg" 2>"$h/err"; then'
    ' echo "the snapshot does not decrypt with the given key: nothing was changed" >&2;'
    ' cat "$h/err" >&2; exit 1; fi;'
)
_RESTORE = (
    " systemctl stop {unit}; rm -rf {aside}; if [ -d {data} ]; then mv {data} {aside}; fi;"
    ' {etcdutl} snapshot restore "$f" --name {name} --initial-cluster {cluster}'
    " --initial-cluster-token {token} --initial-advertise-peer-urls {peer_url}"
    ' --data-dir {data} >"$f.log" 2>&1 || {{ cat "$f.log" >&2; exit 1; }};'
    " chown -R {user}:{user} {data}; chmod 0700 {data};"
    " touch {marker}"
)


def _with_key(state: State, host: Remote, name: str, command: StringCommand, key: str) -> bool:
    """Run time: the restore with the private key on its standard input only."""
    ok, out = host.run(command, stdin=key)
    if not ok:
        return host.fail(f"{name}: {out.stderr.strip()}")
    return True
