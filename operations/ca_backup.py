"""Encrypted backups of the CA state in S3, and restores from them.

The archive is made and encrypted on the cert-manager with GnuPG: to a recipient public key,
or (KMS envelope encryption) with a fresh data key from AWS KMS `GenerateDataKey` as the
passphrase of OpenPGP's integrity-protected AES-256, the key wrapped by KMS stored beside the
backup (`<key>.datakey`). The controller carries only ciphertext, in memory, to and from S3
(boto3, any S3-compatible endpoint); a plaintext data key lives only in its memory and on the
host's standard input. A restore checks the object's SHA-256 before anything is touched,
decrypts on the target (with the operator's private key in a temporary keyring, or with the
data key KMS `Decrypt` unwrapped) in a directory removed afterwards, checks the result, and
swaps it in; a damaged or wrong backup, or a wrong key, changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts.ca import CAFiles, CAState
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.facts.shell import cleanup_on_exit, raw, replace_file, script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import BACKUP_SIGNING_KEY, MODES, PAUSE_STEP_CA, RESUME_STEP_CA
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import PinnedRoot, root_fingerprint

WORK = "/run/etcd-step-pki/ca-backup"
# What the last restore on a host restored: a second run of the same restore changes nothing,
# even after the CA has issued more certificates (it would roll them back).
RESTORE_MARKER = "/var/lib/etcd-step-pki/ca-restored"
SUFFIX = ".tar.gz.gpg"
DATA_KEY = ".datakey"  # beside a KMS backup: its data key, wrapped by KMS
BESIDE = ("", ".sha256", ".sig", DATA_KEY)  # a backup's objects


@dataclass(frozen=True)
class Store:
    """Where backups go: an S3 bucket and prefix, on AWS or any S3-compatible endpoint."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str

    def client(self) -> Any:  # a boto3 S3 client: boto3 ships no types
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)

    @property
    def latest(self) -> str:
        return f"{self.prefix}/latest"


@dataclass(frozen=True)
class Kms:
    """The AWS KMS key that wraps each backup's data key (envelope encryption)."""

    key_id: str  # key id, ARN or alias/<name>
    endpoint_url: str | None  # None: AWS
    region: str

    def client(self) -> Any:  # a boto3 KMS client
        import boto3

        return boto3.client("kms", endpoint_url=self.endpoint_url, region_name=self.region)

    def arn(self) -> str:
        """The key's ARN; OperationError naming the key when KMS refuses or does not know it
        (before anything is changed)."""
        client = self.client()
        try:
            return str(client.describe_key(KeyId=self.key_id)["KeyMetadata"]["Arn"])
        except client.exceptions.ClientError as error:
            raise OperationError(
                f"KMS key {self.key_id!r}: {error.response.get('Error', {}).get('Message')}"
            ) from None


def data_key_context(key: str) -> dict[str, str]:
    """The KMS encryption context of a backup's data key: bound to its object, so a wrapped
    key copied beside another backup does not unwrap."""
    return {"etcd-step-pki": "ca-backup", "object": key}


def state_digest(files: dict[str, str]) -> str:
    """One SHA-256 for a whole CA state (its files' hashes), to tell backups apart."""
    text = "".join(f"{name}  {digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _latest(store: Store) -> dict[str, Any] | None:
    """The `latest` pointer: `{"key", "state", "encryption"}`, or None when there is no
    backup yet."""
    client = store.client()
    try:
        head = client.head_object(Bucket=store.bucket, Key=store.latest)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    body = client.get_object(Bucket=store.bucket, Key=store.latest)["Body"].read().decode()
    meta = head.get("Metadata", {})
    return {
        "key": body.strip(),
        "state": meta.get("state-sha256"),
        "encryption": meta.get("encryption", "gpg"),
    }


_GPG = " gpg --batch --quiet --no-tty --pinentry-mode loopback --homedir"

# What the standard input brings, and how the archive is encrypted with it: the recipient's
# public key (imported), or a KMS data key (in the 0700 tmpfs work directory, used as the
# passphrase of AES-256 with OpenPGP's integrity protection, and removed with it).
_SECRET = {
    "gpg": ' $g --import 2>"$w/err" || {{ cat "$w/err" >&2; exit 1; }};'
    " fpr=$($g --with-colons --list-keys | awk -F: '/^fpr:/ {{print $10; exit}}');",
    "kms": ' cat > "$w/dk";',
}
_ENCRYPT = {
    "gpg": ' $g --trust-model always --recipient "$fpr" --encrypt',
    "kms": ' $g --symmetric --cipher-algo AES256 --passphrase-file "$w/dk"',
}


def _pack(encryption: str) -> str:
    """The primary's script: the CA state packed (step-ca paused) and encrypted, signed."""
    return (
        'set -e; umask 077; w={work}; install -d -m 0700 "$w/gnupg" "$w/signer";'
        f' g="{_GPG} $w/gnupg"; s="{_GPG} $w/signer";'
        + _SECRET[encryption]
        + PAUSE_STEP_CA
        + " tar -C {path} -cpzf - . |"
        + _ENCRYPT[encryption]
        + ' --output "$w/backup.gpg"'
        + RESUME_STEP_CA
        + ' rm -f "$w/dk";'
        # Signed with the CA's backup signing key, in a keyring of its own that goes at once.
        + ' $s --import {signing_key} 2>/dev/null; $s --detach-sign --output "$w/backup.gpg.sig"'
        ' "$w/backup.gpg"; $s --armor --export > "$w/signer.asc";'
        " $s --with-colons --list-keys | awk -F: '/^fpr:/ {{print $10; exit}}';"
        ' rm -rf "$w/gnupg" "$w/signer"; sha256sum "$w/backup.gpg" | cut -c1-64'
    )


_SIGNING_KEY = (
    'set -e; umask 077; k={key}; [ ! -s "$k" ] || exit 0; d=$(mktemp -d /run/etcd-step-pki-signer.XXXXXX); '
    + cleanup_on_exit('rm -rf "$d"')
    + f' s="{_GPG} $d";'
    " $s --passphrase '' --quick-gen-key {uid} ed25519 sign never 2>/dev/null;"
    ' $s --armor --export-secret-keys > "$k.new"; chmod 0400 "$k.new"; mv -f "$k.new" "$k"'
)


@operation()
def backup_signing_key(path: str, *, cluster: str) -> Commands:
    """
    The key that signs the CA's backups, made on the CA host once and kept with its state.

    + path: the CA's `$STEPPATH`
    + cluster: the cluster's name, in the key's user id
    """
    if BACKUP_SIGNING_KEY in host.get_fact(CAFiles, path=path):
        host.noop("the CA has its backup signing key")
        return
    yield script(
        _SIGNING_KEY,
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
      (the first backup writes it; a backup signed by another key is refused)
    + kms: the KMS key that wraps the backup's data key, in place of a recipient
    """
    if (kms is None) == (recipient_key is None):
        raise OperationError("a CA backup is encrypted to a recipient key or with KMS: one")
    files = host.get_fact(CAFiles, path=path)
    if not files:
        raise OperationError(f"no CA state at {path} to back up")
    digest = state_digest(files)
    latest = _latest(store)
    encryption = "kms" if kms else "gpg"
    if latest and latest["state"] == digest and latest["encryption"] == encryption:
        host.noop(f"the latest backup ({latest['key']}) holds this CA state")
        return
    if kms is not None:
        kms.arn()  # a key KMS does not know is refused before anything is made
    yield RunTimeStep(
        _backup, path, store, recipient_key, retention_days, digest, signer_record, kms
    )


def _data_key(kms: Kms, key: str) -> tuple[str, bytes, str]:
    """Run time: a new data key for the backup `key` from KMS: `(plaintext as the host's
    standard input, the key wrapped by KMS, the ARN of the key that wrapped it)`."""
    made = kms.client().generate_data_key(
        KeyId=kms.key_id, KeySpec="AES_256", EncryptionContext=data_key_context(key)
    )
    secret = base64.b64encode(made["Plaintext"]).decode() + "\n"
    return secret, made["CiphertextBlob"], str(made["KeyId"])


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
    signing_key = f"{path}/{BACKUP_SIGNING_KEY}"
    now = dt.datetime.now(dt.UTC)
    key = f"{store.prefix}/{now:%Y/%m}/ca-backup-{now:%Y%m%dT%H%M%SZ}{SUFFIX}"
    meta = {"state-sha256": digest, "encryption": "kms" if kms else "gpg"}
    secret, wrapped = recipient_key or "", b""
    if kms is not None:
        try:
            secret, wrapped, meta["kms-key"] = _data_key(kms, key)
        except Exception as error:  # botocore's errors: what KMS said, nothing uploaded
            return host.fail(f"KMS gave no data key under {kms.key_id!r}: {error}")
    fetched: dict[str, bytes] = {}
    try:
        ok, out = host.run(
            script(_pack(meta["encryption"]), work=WORK, path=path, signing_key=signing_key),
            stdin=secret,
        )
        if not ok:
            return host.fail(f"packing and encrypting the CA state failed: {out.stderr}")
        signer, expected = [*out.stdout_lines, "", ""][:2]
        for name in ("backup.gpg", "backup.gpg.sig", "signer.asc"):
            buffer = BytesIO()
            if not host.get(f"{WORK}/{name}", buffer):
                return host.fail(f"fetching {name} failed")
            fetched[name] = buffer.getvalue()
    finally:
        host.run(script("rm -rf {w}", w=WORK))
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
    client.put_object(Bucket=store.bucket, Key=store.latest, Body=key.encode(), Metadata=meta)
    removed = _expire(store, keep=key, days=retention_days, now=now)
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


def _expire(store: Store, keep: str, days: int, now: dt.datetime) -> int:
    """Delete backups (with their checksums) older than `days`, never `keep`."""
    client = store.client()
    cutoff = now - dt.timedelta(days=days)
    old = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=f"{store.prefix}/"
    ):
        for item in page.get("Contents", []):
            name = item["Key"]
            if name.endswith(SUFFIX) and name != keep and item["LastModified"] < cutoff:
                old.append(name)
    for name in old:
        client.delete_objects(
            Bucket=store.bucket,
            Delete={"Objects": [{"Key": f"{name}{end}"} for end in BESIDE]},
        )
    return len(old)


def fetch_backup(store: Store, key: str) -> tuple[str, bytes, dict[str, str]]:
    """`(key, ciphertext, metadata)` of a backup (`state-sha256`, `encryption`, `kms-key`),
    its SHA-256 checked: raises on mismatch. Its signature is `fetch_signature`'s."""
    client = store.client()
    if key == "latest":
        latest = _latest(store)
        if latest is None:
            raise OperationError(f"no backup in s3://{store.bucket}/{store.prefix}/")
        key = latest["key"]
    try:
        obj = client.get_object(Bucket=store.bucket, Key=key)
        recorded = client.get_object(Bucket=store.bucket, Key=f"{key}.sha256")["Body"].read()
    except client.exceptions.ClientError as error:
        raise OperationError(f"cannot read s3://{store.bucket}/{key}: {error}") from None
    data = obj["Body"].read()
    actual = hashlib.sha256(data).hexdigest()
    wanted = recorded.decode().split()[0] if recorded.strip() else ""
    if actual != wanted:
        raise OperationError(
            f"s3://{store.bucket}/{key} does not match its checksum ({actual} != {wanted}): "
            "nothing was changed"
        )
    return key, data, dict(obj.get("Metadata", {}))


def fetch_data_key(store: Store, key: str, kms: Kms, meta: dict[str, str]) -> bytes:
    """The wrapped data key beside a KMS backup, once the backup is known to be one and
    wrapped by the configured key: raises, naming the problem, before anything is changed."""
    source = f"s3://{store.bucket}/{key}"
    if meta.get("encryption", "gpg") != "kms":
        raise OperationError(
            f"{source} is encrypted to a GnuPG recipient, not with KMS: restore it with "
            "ca_backup_encryption=gpg and ca_restore_private_key; nothing was changed"
        )
    if meta.get("kms-key") and meta["kms-key"] != kms.arn():
        raise OperationError(
            f"the data key of {source} is wrapped by KMS key {meta['kms-key']}, not by "
            f"ca_backup_kms_key_id ({kms.key_id}): nothing was changed"
        )
    client = store.client()
    try:
        wrapped: bytes = client.get_object(Bucket=store.bucket, Key=f"{key}{DATA_KEY}")[
            "Body"
        ].read()
    except client.exceptions.ClientError:
        raise OperationError(f"{source} has no wrapped data key: nothing was changed") from None
    return wrapped


def unwrapped(kms: Kms, key: str, wrapped: bytes) -> str:
    """Run time: the data key of the backup `key` as KMS `Decrypt` gives it back (only under
    the configured key and the backup's own context), as the host's standard input."""
    plain = kms.client().decrypt(
        CiphertextBlob=wrapped, KeyId=kms.key_id, EncryptionContext=data_key_context(key)
    )["Plaintext"]
    return base64.b64encode(plain).decode() + "\n"


def fetch_signature(store: Store, key: str) -> bytes | None:
    """The detached signature of the backup `key`, None when it has none."""
    client = store.client()
    try:
        body: bytes = client.get_object(Bucket=store.bucket, Key=f"{key}.sig")["Body"].read()
    except client.exceptions.ClientError:
        return None
    return body


_MODES = " ".join(
    f'[ ! -e "$n/{name}" ] || chmod {mode} "$n/{name}";'.replace('/"', '"')
    for name, (mode, _) in MODES.items()
)

# What the standard input brings to a restore: the operator's private key (imported in a
# keyring of the work directory), or the data key KMS unwrapped (a file there).
_DECRYPT_WITH = {
    "gpg": (' install -d -m 0700 "$w/gnupg"; $g --import 2>/dev/null;', ""),
    "kms": (
        ' install -d -m 0700 "$w/gnupg"; cat > "$w/dk";',
        ' --pinentry-mode loopback --passphrase-file "$w/dk"',
    ),
}

# A backup staged in the work directory `$w` unpacked into `$n`, checked: its signature first
# (when the signer's key is staged), decrypted; UNPACK checks it too (CHECK_STATE).
_DECRYPT = (
    # The signature first, with the signer's key the controller recorded: nothing else is
    # looked at before it verifies.
    ' if [ -s "$w/signer.asc" ]; then install -d -m 0700 "$w/verify";'
    f' v="{_GPG} $w/verify"; $v --import "$w/signer.asc" 2>/dev/null;'
    ' if ! $v --trust-model always --verify "$w/backup.gpg.sig" "$w/backup.gpg" 2>"$w/err";'
    ' then echo "the backup is not signed by the recorded signer key: nothing was changed" >&2;'
    ' cat "$w/err" >&2; exit 1; fi; fi;' + ' g="gpg --homedir $w/gnupg --batch --quiet --no-tty";'
    "@SECRET@"
    ' rm -rf "$n"; install -d -m 0700 "$n";'
    ' if ! $g@OPTIONS@ --decrypt "$w/backup.gpg" 2>"$w/err" | tar -C "$n" -xpzf - 2>>"$w/err";'
    ' then rm -rf "$n"; echo "the backup does not decrypt or unpack with the given key:" >&2;'
    ' cat "$w/err" >&2; exit 1; fi;'
)

# The CA state in `$n` complete, and of the expected root (when one is expected).
CHECK_STATE = (
    " for f in config/ca.json certs/root_ca.crt certs/intermediate_ca.crt secrets/root_ca_key"
    " secrets/intermediate_ca_key secrets/password; do"
    ' [ -s "$n/$f" ] || {{ rm -rf "$n"; echo "the backup holds no $f: not a CA backup" >&2;'
    " exit 1; }}; done;"
    ' fp=$(openssl x509 -in "$n/certs/root_ca.crt" -outform DER | sha256sum | cut -c1-64);'
    ' if [ -n {expect_root} ] && [ "$fp" != {expect_root} ]; then rm -rf "$n";'
    ' echo "the backup is of another CA (root $fp, this CA\'s is "{expect_root}")" >&2;'
    " exit 1; fi;"
)
UNPACK = _DECRYPT + CHECK_STATE

_RESTORE = (
    "set -e; umask 077; w={work}; n={path}.incoming; "
    + cleanup_on_exit('rm -rf "$w"')
    + UNPACK
    + ' chown -R root:root "$n"; '
    + _MODES
    + " systemctl stop step-ca.service 2>/dev/null || true;"
    " p={path}.before-restore-$(date +%Y%m%d%H%M%S);"
    ' if [ -d {path} ]; then mv {path} "$p"; fi; mv "$n" {path}; echo "$p"'
)


def unpack_script(template: str, encryption: str) -> str:
    """`template` (holding `UNPACK`) with the decryption of `encryption` (gpg, kms)."""
    secret, options = _DECRYPT_WITH[encryption]
    return template.replace("@SECRET@", secret).replace("@OPTIONS@", options)


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
    """
    backup = fetched(store, key, private_key=private_key, kms=kms, signer_key=signer_key)
    key, digest, source = backup.key, backup.digest, backup.source
    if host.get_fact(FileText, path=RESTORE_MARKER) == source:
        host.noop(f"{source} was restored here already")
        return
    if digest and state_digest(host.get_fact(CAFiles, path=path)) == digest:
        host.noop(f"{path} holds the state of {key} already")
        return
    current = host.get_fact(CAState, path=path)["root"]
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
    store: Store, key: str, *, private_key: str | None, kms: Kms | None, signer_key: str | None
) -> Fetched:
    """The backup `key` (or `latest`) with its checksum checked, its signature and (KMS) its
    wrapped data key; raises, naming the problem, before anything is changed."""
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
    ok, _ = host.run(script("rm -rf {w}; install -d -m 0700 {w}", w=WORK))
    if not ok:
        host.fail(f"cannot create {WORK}")
        return None
    for name, data in backup.staged.items():
        if not host.put(BytesIO(data), f"{WORK}/{name}"):
            host.run(script("rm -rf {w}", w=WORK))
            host.fail(f"staging {name} failed")
            return None
    return secret


def restore_recorded(source: str) -> Commands:
    """Record on the host what was restored there."""
    directory = raw("install -d -m 0700 {d}", d=RESTORE_MARKER.rsplit("/", 1)[0])
    yield StringCommand(directory + " && " + replace_file(RESTORE_MARKER, source + "\n", "0600"))


def _restore(state: State, host: Remote, path: str, backup: Fetched, expect_root: str) -> bool:
    """Run time: the ciphertext (with its signature and signer) staged in tmpfs, the private
    key (or the data key KMS unwrapped, first) on stdin only; verify, decrypt, check, swap
    in."""
    secret = staged(host, backup)
    if secret is None:
        return False
    ok, out = host.run(
        script(
            unpack_script(_RESTORE, backup.encryption),
            work=WORK,
            path=path,
            expect_root=expect_root,
        ),
        stdin=secret,
    )
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
    if host.get_fact(FileText, path=RESTORE_MARKER) == source:
        host.noop(f"the restore of {source} is recorded")
        return
    yield from restore_recorded(source)
