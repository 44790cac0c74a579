"""Restores of the CA state from an S3 backup (operations/ca_backup.py makes them).

A restore checks the object's SHA-256 before anything is touched, verifies its signature and
decrypts on the target (with the operator's private key in a temporary keyring, or with the
data key KMS `Decrypt` unwrapped) in a directory removed afterwards, checks the result, and
swaps it in; a damaged or wrong backup, or a wrong key, changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAFiles, CAState
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.facts.shell import raw, replace_file
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.backup_manifests import staged_manifests
from etcd_step_pki.operations.backup_store import (
    Kms,
    Store,
    fetch_backup,
    fetch_data_key,
    fetch_signature,
    state_digest,
    unwrapped,
)
from etcd_step_pki.operations.ca import MODES
from etcd_step_pki.operations.ca_backup import WORK, removed_work
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import PinnedRoot, root_fingerprint
from etcd_step_pki.templates.scripts import script

# What the last restore on a host restored: a second run of the same restore changes nothing,
# even after the CA has issued more certificates (it would roll them back).
RESTORE_MARKER = "/var/lib/etcd-step-pki/ca-restored"


@operation()
def restored_from_s3(
    *,
    path: str,
    store: Store,
    key: str,
    private_key: str | None,
    any_root: bool = False,
    pin: PinnedRoot | None = None,
    signer_key: str | None = None,
    kms: Kms | None = None,
    allow_older: bool = False,
) -> Commands:
    """
    Restore the CA state from an S3 backup unless this host already holds that state.

    + path: the CA's `$STEPPATH`
    + store: the S3 bucket and prefix
    + key: an object key, or `latest`
    + private_key: armored GnuPG private key that decrypts the backup (operator's; None
      with `kms`)
    + any_root: accept a backup of another CA than the one this host holds
    + pin: the root the backup must have (operations/roots.py); it overrides `any_root`
    + signer_key: the armored public key the backup must be signed with, verified on the
      host before anything else (None: not verified)
    + kms: the KMS key that unwraps the backup's data key (a backup made with KMS)
    + allow_older: restore a backup older than the newest signed one of the CA
    """
    backup = fetched(
        store, key, private_key=private_key, kms=kms, signer_key=signer_key,
        allow_older=allow_older,
    )  # fmt: skip
    key, digest, source = backup.key, backup.digest, backup.source
    if memo.get_fact(host, FileText, path=RESTORE_MARKER) == source:
        host.noop(f"{source} was restored here already")
        return
    if digest and state_digest(memo.get_fact(host, CAFiles, path=path)) == digest:
        host.noop(f"{path} holds the state of {key} already")
        return
    current = memo.get_fact(host, CAState, path=path)["root"]
    expect_root = root_fingerprint(current) if current and not any_root else ""
    if pin is not None and pin.fingerprint:
        expect_root = pin.fingerprint
    yield RunTimeStep(_restore, path, backup, expect_root)
    yield from restore_recorded(source)


@dataclass(frozen=True)
class Fetched:
    """A backup fetched to the controller, checked, ready to stage on a host: the files of
    the work directory, and what decrypts it (the private key, or KMS and the wrapped key)."""

    key: str
    source: str  # s3://bucket/key
    digest: str  # of the CA state it holds
    staged: dict[str, bytes]
    secret: str | tuple[Kms, bytes]
    encryption: str  # gpg | kms


def fetched(
    store: Store,
    key: str,
    *,
    private_key: str | None,
    kms: Kms | None,
    signer_key: str | None,
    allow_older: bool = False,
) -> Fetched:
    """The backup `key` (or `latest`) with its checksum checked, its signature, its signed
    manifest and those of newer backups (unless `allow_older`: operations/backup_manifests.py)
    and (KMS) its wrapped data key; raises, naming the problem, before anything is changed."""
    if (kms is None) == (private_key is None):
        raise OperationError("a CA backup is decrypted with a private key or with KMS: one")
    key, data, meta = fetch_backup(store, key)
    wrapped = fetch_data_key(store, key, kms, meta) if kms is not None else b""
    if kms is None and meta.get("encryption") == "kms":
        raise OperationError(
            f"s3://{store.bucket}/{key} is encrypted with a KMS data key: restore it with "
            "ca_backup_encryption=kms and ca_backup_kms_key_id; nothing was changed"
        )
    signature = fetch_signature(store, key) if signer_key else None
    if signer_key and signature is None:
        raise OperationError(f"s3://{store.bucket}/{key} has no signature: nothing was changed")
    staged = {"backup.gpg": data}
    if signer_key and signature is not None:
        staged |= {"backup.gpg.sig": signature, "signer.asc": signer_key.encode()}
        staged |= staged_manifests(store, key, allow_older=allow_older)
    return Fetched(
        key=key,
        source=f"s3://{store.bucket}/{key}",
        digest=meta.get("state-sha256", ""),
        staged=staged,
        secret=(kms, wrapped) if kms is not None else str(private_key),
        encryption="gpg" if kms is None else "kms",
    )


def staged(host: Remote, backup: Fetched) -> str | None:
    """Run time: the backup's files in the work directory, and what decrypts it (the data
    key unwrapped by KMS first), for the host's standard input; None after a failure."""
    secret = backup.secret
    if isinstance(secret, tuple):
        kms, wrapped = secret
        try:
            secret = unwrapped(kms, backup.key, wrapped)
        except Exception as error:  # botocore's errors: what KMS said
            host.fail(
                f"KMS did not unwrap the data key of {backup.key} with {kms.key_id!r}: "
                f"{error}; nothing was changed"
            )
            return None
    ok, _ = host.run(
        StringCommand(removed_work(), "&&", "install", "-d", "-m", "0700", QuoteString(WORK))
    )
    if not ok:
        host.fail(f"cannot create {WORK}")
        return None
    for name, data in backup.staged.items():
        if not host.put(BytesIO(data), f"{WORK}/{name}"):
            host.run(removed_work())
            host.fail(f"staging {name} failed")
            return None
    return secret


def restore_recorded(source: str) -> Commands:
    """Record on the host what was restored there."""
    directory = raw("install -d -m 0700 {d}", d=RESTORE_MARKER.rsplit("/", 1)[0])
    yield StringCommand(directory + " && " + replace_file(RESTORE_MARKER, source + "\n", "0600"))


def restore_script(path: str, encryption: str, expect_root: str) -> StringCommand:
    """The target's script: the staged backup verified, decrypted, checked, swapped in."""
    return script(
        "ca-restore.sh.j2",
        work=WORK,
        path=path,
        encryption=encryption,
        expect_root=expect_root,
        modes=[(name, mode) for name, (mode, _) in MODES.items()],
    )


def _restore(state: State, host: Remote, path: str, backup: Fetched, expect_root: str) -> bool:
    """Run time: the ciphertext (with its signature and signer) staged in tmpfs, the private
    key (or the data key KMS unwrapped, first) on stdin only; verify, decrypt, check, swap
    in."""
    secret = staged(host, backup)
    if secret is None:
        return False
    ok, out = host.run(restore_script(path, backup.encryption, expect_root), stdin=secret)
    if not ok:
        return host.fail(f"restoring {backup.key} failed, the CA is as it was: {out.stderr}")
    host.log(f"restored {backup.key}; the previous state is kept at {out.stdout.strip()}")
    return True


@operation()
def recorded(*, source: str) -> Commands:
    """
    Record that the CA state of `source` was restored on this host.

    + source: `s3://bucket/key` or `host:<cert-manager>`
    """
    if memo.get_fact(host, FileText, path=RESTORE_MARKER) == source:
        host.noop(f"the restore of {source} is recorded")
        return
    yield from restore_recorded(source)
