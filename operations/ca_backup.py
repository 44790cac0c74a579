"""Encrypted, signed backups of the CA state in S3.

The archive is made and encrypted on the cert-manager with GnuPG: to a recipient public key,
or (KMS envelope encryption) with a fresh data key from AWS KMS `GenerateDataKey` as the
passphrase of OpenPGP's integrity-protected AES-256, the key wrapped by KMS stored beside the
backup (`<key>.datakey`). It is signed with the CA's own backup signing key. The controller
carries only ciphertext, in memory, to S3 (operations/backup_store.py); restores are
operations/ca_restore.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from io import BytesIO
from pathlib import Path

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAFiles
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.backup_manifests import HEADER, MANIFEST
from etcd_step_pki.operations.backup_store import (
    DATA_KEY,
    Kms,
    Store,
    backup_key,
    expire,
    latest_backup,
    new_data_key,
    state_digest,
)
from etcd_step_pki.operations.ca import BACKUP_SIGNING_KEY, STEP_CA_PAUSE
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.templates.scripts import script

WORK = "/run/etcd-step-pki/ca-backup"


def removed_work() -> StringCommand:
    """The work directory removed (with whatever it holds)."""
    return StringCommand("rm", "-rf", QuoteString(WORK))


def _pack(encryption: str, path: str, key: str, created: str, digest: str) -> StringCommand:
    """The primary's script: the CA state packed (step-ca paused), encrypted, signed, with
    its signed manifest (`key`, `created`, `digest`: operations/backup_manifests.py)."""
    return script(
        "ca-backup-pack.sh.j2",
        work=WORK,
        path=path,
        signing_key=f"{path}/{BACKUP_SIGNING_KEY}",
        encryption=encryption,
        pause=STEP_CA_PAUSE,
        header=HEADER,
        object=key,
        created=created,
        state=digest,
    )


@operation()
def backup_signing_key(path: str, *, cluster: str) -> Commands:
    """
    The key that signs the CA's backups, made on the CA host once and kept with its state.

    + path: the CA's `$STEPPATH`
    + cluster: the cluster's name, in the key's user id
    """
    if BACKUP_SIGNING_KEY in memo.get_fact(host, CAFiles, path=path):
        host.noop("the CA has its backup signing key")
        return
    yield script(
        "ca-backup-signing-key.sh.j2",
        key=f"{path}/{BACKUP_SIGNING_KEY}",
        uid=f"etcd-step-pki CA backups (etcd-{cluster})",
    )


@operation()
def backed_up(
    *,
    path: str,
    store: Store,
    recipient_key: str | None,
    retention_days: int,
    signer_record: str | None = None,
    kms: Kms | None = None,
) -> Commands:
    """
    Upload an encrypted, signed backup of the CA state unless the latest backup holds this
    state.

    + path: the CA's `$STEPPATH` (with its backup signing key: `backup_signing_key`)
    + store: the S3 bucket and prefix
    + recipient_key: armored GnuPG public key the backup is encrypted to (without `kms`)
    + retention_days: backups older than this are deleted (never the latest)
    + signer_record: a file on the controller that keeps the public half of the signing key
      (the first backup of the CA writes it; a backup signed by another key is refused, and
      so is any later backup while the record is missing)
    + kms: the KMS key that wraps the backup's data key, in place of a recipient
    """
    if (kms is None) == (recipient_key is None):
        raise OperationError("a CA backup is encrypted to a recipient key or with KMS: one")
    files = memo.get_fact(host, CAFiles, path=path)
    if not files:
        raise OperationError(f"no CA state at {path} to back up")
    digest = state_digest(files)
    latest = latest_backup(store)
    if latest and signer_record and not Path(signer_record).is_file():
        # Only the first backup of a CA records its signer: after that, a controller without
        # the record would trust whatever key signs.
        raise OperationError(
            f"s3://{store.bucket}/{store.latest} names backups of this CA, but the record of "
            f"the key that signs them is missing ({signer_record}: a fresh checkout, or "
            "another controller?): nothing was backed up. Put the record back (commit it "
            "with the inventory, where the first backup wrote it)"
        )
    encryption = "kms" if kms else "gpg"
    if latest and latest["state"] == digest and latest["encryption"] == encryption:
        host.noop(f"the latest backup ({latest['key']}) holds this CA state")
        return
    if kms is not None:
        kms.arn()  # a key KMS does not know is refused before anything is made
    yield RunTimeStep(
        _backup, path, store, recipient_key, retention_days, digest, signer_record, kms
    )


def _backup(
    state: State,
    host: Remote,
    path: str,
    store: Store,
    recipient_key: str | None,
    retention_days: int,
    digest: str,
    signer_record: str | None,
    kms: Kms | None,
) -> bool:
    """Run time: pack, encrypt and sign on the host (the recipient key, or the data key, on
    stdin), upload the ciphertext, its signature and its wrapped data key from memory."""
    now = dt.datetime.now(dt.UTC)
    key = backup_key(store, now)
    meta = {"state-sha256": digest, "encryption": "kms" if kms else "gpg"}
    secret, wrapped = recipient_key or "", b""
    if kms is not None:
        try:
            secret, wrapped, meta["kms-key"] = new_data_key(kms, key)
        except Exception as error:  # botocore's errors: what KMS said, nothing uploaded
            return host.fail(f"KMS gave no data key under {kms.key_id!r}: {error}")
    fetched: dict[str, bytes] = {}
    try:
        created = f"{now:%Y-%m-%dT%H:%M:%SZ}"
        ok, out = host.run(_pack(meta["encryption"], path, key, created, digest), stdin=secret)
        if not ok:
            return host.fail(f"packing and encrypting the CA state failed: {out.stderr}")
        signer, expected = [*out.stdout_lines, "", ""][:2]
        for name in ("backup.gpg", "backup.gpg.sig", "signer.asc", "manifest", "manifest.sig"):
            buffer = BytesIO()
            if not host.get(f"{WORK}/{name}", buffer):
                return host.fail(f"fetching {name} failed")
            fetched[name] = buffer.getvalue()
    finally:
        host.run(removed_work())
    if signer_record and not _signer_recorded(signer_record, signer, fetched["signer.asc"]):
        return host.fail(
            f"the CA signs its backups with key {signer}, not with the one recorded in "
            f"{signer_record}: no backup was uploaded. If the CA was replaced on purpose, "
            "move that file away and run again"
        )
    data = fetched["backup.gpg"]
    checksum = hashlib.sha256(data).hexdigest()
    if checksum != expected:
        return host.fail("the encrypted backup changed on its way to the controller")
    client = store.client()
    meta["sha256"] = checksum
    if wrapped:
        client.put_object(Bucket=store.bucket, Key=f"{key}{DATA_KEY}", Body=wrapped)
    client.put_object(Bucket=store.bucket, Key=key, Body=data, Metadata=meta)
    name = key.rsplit("/", 1)[1]
    client.put_object(Bucket=store.bucket, Key=f"{key}.sha256", Body=f"{checksum}  {name}\n")
    client.put_object(Bucket=store.bucket, Key=f"{key}.sig", Body=fetched["backup.gpg.sig"])
    for end in ("", ".sig"):
        body = fetched[f"manifest{end}"]
        client.put_object(Bucket=store.bucket, Key=f"{key}{MANIFEST}{end}", Body=body)
    # `latest`: the newest backup's manifest (its object named there), and its signature.
    client.put_object(Bucket=store.bucket, Key=f"{store.latest}.sig", Body=fetched["manifest.sig"])
    client.put_object(
        Bucket=store.bucket, Key=store.latest, Body=fetched["manifest"], Metadata=meta
    )
    removed = expire(store, keep=key, days=retention_days, now=now)
    host.log(
        f"backup s3://{store.bucket}/{key} ({len(data)} bytes)"
        + (f"; {removed} expired backup(s) deleted" if removed else "")
    )
    return True


def _signer_recorded(record: str, fingerprint: str, public_key: bytes) -> bool:
    """Whether the signing key is the one recorded on the controller (recording it when none
    is yet): the first line of the record names its fingerprint, the armored key follows."""
    path = Path(record)
    if path.is_file():
        return path.read_text().split("\n", 1)[0] == f"# {fingerprint}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {fingerprint}\n" + public_key.decode())
    return True
