"""Encrypted backups of the CA state in S3, and restores from them.

The archive is made and encrypted on the cert-manager with GnuPG, to a recipient public key;
the controller carries only the ciphertext, in memory, to and from S3 (boto3, any
S3-compatible endpoint). A restore checks the object's SHA-256 before anything is touched,
decrypts on the target with the operator's private key in a temporary keyring that is removed
afterwards, checks the result, and swaps it in; a damaged or wrong backup changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from facts.ca import CAFiles, CAState
from facts.paths import FileText
from facts.shell import cleanup_on_exit, raw, replace_file, script
from operations import Commands
from operations.ca import BACKUP_SIGNING_KEY, MODES, PAUSE_STEP_CA, RESUME_STEP_CA
from operations.remote import Remote, RunTimeStep
from operations.roots import PinnedRoot, root_fingerprint

WORK = "/run/etcd-step-pki/ca-backup"
# What the last restore on a host restored: a second run of the same restore changes nothing,
# even after the CA has issued more certificates (it would roll them back).
RESTORE_MARKER = "/var/lib/etcd-step-pki/ca-restored"
SUFFIX = ".tar.gz.gpg"


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


def state_digest(files: dict[str, str]) -> str:
    """One SHA-256 for a whole CA state (its files' hashes), to tell backups apart."""
    text = "".join(f"{name}  {digest}\n" for name, digest in sorted(files.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _latest(store: Store) -> dict[str, Any] | None:
    """The `latest` pointer: `{"key", "state"}`, or None when there is no backup yet."""
    client = store.client()
    try:
        head = client.head_object(Bucket=store.bucket, Key=store.latest)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    body = client.get_object(Bucket=store.bucket, Key=store.latest)["Body"].read().decode()
    return {"key": body.strip(), "state": head.get("Metadata", {}).get("state-sha256")}


_GPG = " gpg --batch --quiet --no-tty --pinentry-mode loopback --homedir"

_PACK = (
    'set -e; umask 077; w={work}; install -d -m 0700 "$w/gnupg" "$w/signer";'
    f' g="{_GPG} $w/gnupg"; s="{_GPG} $w/signer";'
    ' $g --import 2>"$w/err" || {{ cat "$w/err" >&2; exit 1; }};'
    " fpr=$($g --with-colons --list-keys | awk -F: '/^fpr:/ {{print $10; exit}}');"
    + PAUSE_STEP_CA
    + ' tar -C {path} -cpzf - . | $g --trust-model always --recipient "$fpr" --encrypt'
    ' --output "$w/backup.gpg"'
    + RESUME_STEP_CA
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
    recipient_key: str,
    retention_days: int,
    signer_record: str | None = None,
) -> Commands:
    """
    Upload an encrypted, signed backup of the CA state unless the latest backup holds this
    state.

    + path: the CA's `$STEPPATH` (with its backup signing key: `backup_signing_key`)
    + store: the S3 bucket and prefix
    + recipient_key: armored GnuPG public key the backup is encrypted to
    + retention_days: backups older than this are deleted (never the latest)
    + signer_record: a file on the controller that keeps the public half of the signing key
      (the first backup writes it; a backup signed by another key is refused)
    """
    files = host.get_fact(CAFiles, path=path)
    if not files:
        raise OperationError(f"no CA state at {path} to back up")
    digest = state_digest(files)
    latest = _latest(store)
    if latest and latest["state"] == digest:
        host.noop(f"the latest backup ({latest['key']}) holds this CA state")
        return
    yield RunTimeStep(_backup, path, store, recipient_key, retention_days, digest, signer_record)


def _backup(
    state: State,
    host: Remote,
    path: str,
    store: Store,
    recipient_key: str,
    retention_days: int,
    digest: str,
    signer_record: str | None,
) -> bool:
    """Run time: pack, encrypt and sign on the host (the recipient key on stdin), upload the
    ciphertext and its signature from memory."""
    signing_key = f"{path}/{BACKUP_SIGNING_KEY}"
    fetched: dict[str, bytes] = {}
    try:
        ok, out = host.run(
            script(_PACK, work=WORK, path=path, signing_key=signing_key), stdin=recipient_key
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
    now = dt.datetime.now(dt.UTC)
    key = f"{store.prefix}/{now:%Y/%m}/ca-backup-{now:%Y%m%dT%H%M%SZ}{SUFFIX}"
    client = store.client()
    meta = {"state-sha256": digest, "sha256": checksum}
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
            Delete={"Objects": [{"Key": f"{name}{end}"} for end in ("", ".sha256", ".sig")]},
        )
    return len(old)


def fetch_backup(store: Store, key: str) -> tuple[str, bytes, str]:
    """`(key, ciphertext, state digest)` of a backup, its SHA-256 checked: raises on mismatch.
    Its signature is `fetch_signature`'s."""
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
    return key, data, obj.get("Metadata", {}).get("state-sha256", "")


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

_RESTORE = (
    "set -e; umask 077; w={work}; n={path}.incoming; "
    + cleanup_on_exit('rm -rf "$w"')
    # The signature first, with the signer's key the controller recorded: nothing else is
    # looked at before it verifies.
    + ' if [ -s "$w/signer.asc" ]; then install -d -m 0700 "$w/verify";'
    f' v="{_GPG} $w/verify"; $v --import "$w/signer.asc" 2>/dev/null;'
    ' if ! $v --trust-model always --verify "$w/backup.gpg.sig" "$w/backup.gpg" 2>"$w/err";'
    ' then echo "the backup is not signed by the recorded signer key: nothing was changed" >&2;'
    ' cat "$w/err" >&2; exit 1; fi; fi;' + ' g="gpg --homedir $w/gnupg --batch --quiet --no-tty";'
    ' install -d -m 0700 "$w/gnupg"; $g --import 2>/dev/null;'
    ' rm -rf "$n"; install -d -m 0700 "$n";'
    ' if ! $g --decrypt "$w/backup.gpg" 2>"$w/err" | tar -C "$n" -xpzf - 2>>"$w/err"; then'
    ' rm -rf "$n"; echo "the backup does not decrypt or unpack with the given key:" >&2;'
    ' cat "$w/err" >&2; exit 1; fi;'
    " for f in config/ca.json certs/root_ca.crt certs/intermediate_ca.crt secrets/root_ca_key"
    " secrets/intermediate_ca_key secrets/password; do"
    ' [ -s "$n/$f" ] || {{ rm -rf "$n"; echo "the backup holds no $f: not a CA backup" >&2;'
    " exit 1; }}; done;"
    ' fp=$(openssl x509 -in "$n/certs/root_ca.crt" -outform DER | sha256sum | cut -c1-64);'
    ' if [ -n {expect_root} ] && [ "$fp" != {expect_root} ]; then rm -rf "$n";'
    ' echo "the backup is of another CA (root $fp, this CA\'s is "{expect_root}")" >&2;'
    " exit 1; fi;"
    ' chown -R root:root "$n"; ' + _MODES + " systemctl stop step-ca.service 2>/dev/null || true;"
    " p={path}.before-restore-$(date +%Y%m%d%H%M%S);"
    ' if [ -d {path} ]; then mv {path} "$p"; fi; mv "$n" {path}; echo "$p"'
)


@operation()
def restored_from_s3(
    *,
    path: str,
    store: Store,
    key: str,
    private_key: str,
    any_root: bool = False,
    pin: PinnedRoot | None = None,
    signer_key: str | None = None,
) -> Commands:
    """
    Restore the CA state from an S3 backup unless this host already holds that state.

    + path: the CA's `$STEPPATH`
    + store: the S3 bucket and prefix
    + key: an object key, or `latest`
    + private_key: armored GnuPG private key that decrypts the backup (operator's)
    + any_root: accept a backup of another CA than the one this host holds
    + pin: the root the backup must have (operations/roots.py); it overrides `any_root`
    + signer_key: the armored public key the backup must be signed with, verified on the
      host before anything else (None: not verified)
    """
    key, data, digest = fetch_backup(store, key)
    signature = fetch_signature(store, key) if signer_key else None
    if signer_key and signature is None:
        raise OperationError(f"s3://{store.bucket}/{key} has no signature: nothing was changed")
    source = f"s3://{store.bucket}/{key}"
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
    staged = {"backup.gpg": data}
    if signer_key and signature is not None:
        staged |= {"backup.gpg.sig": signature, "signer.asc": signer_key.encode()}
    yield RunTimeStep(_restore, path, key, staged, private_key, expect_root)
    yield from restore_recorded(source)


def restore_recorded(source: str) -> Commands:
    """Record on the host what was restored there."""
    directory = raw("install -d -m 0700 {d}", d=RESTORE_MARKER.rsplit("/", 1)[0])
    yield StringCommand(directory + " && " + replace_file(RESTORE_MARKER, source + "\n", "0600"))


def _restore(
    state: State,
    host: Remote,
    path: str,
    key: str,
    staged: dict[str, bytes],
    private_key: str,
    expect_root: str,
) -> bool:
    """Run time: the ciphertext (with its signature and signer) staged in tmpfs, the private
    key on stdin only; verify, decrypt, check, swap in."""
    ok, _ = host.run(script("rm -rf {w}; install -d -m 0700 {w}", w=WORK))
    if not ok:
        return host.fail(f"cannot create {WORK}")
    for name, data in staged.items():
        if not host.put(BytesIO(data), f"{WORK}/{name}"):
            host.run(script("rm -rf {w}", w=WORK))
            return host.fail(f"staging {name} failed")
    ok, out = host.run(
        script(_RESTORE, work=WORK, path=path, expect_root=expect_root), stdin=private_key
    )
    if not ok:
        return host.fail(f"restoring {key} failed, the CA is as it was: {out.stderr}")
    host.log(f"restored {key}; the previous state is kept at {out.stdout.strip()}")
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
