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
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from facts.ca import CAFiles, CAState
from facts.paths import FileText
from facts.shell import cleanup_on_exit, raw, replace_file, script
from operations import Commands
from operations.ca import MODES, PAUSE_STEP_CA, RESUME_STEP_CA
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


_PACK = (
    'set -e; umask 077; w={work}; install -d -m 0700 "$w/gnupg";'
    ' g="gpg --homedir $w/gnupg --batch --quiet --no-tty";'
    ' $g --import 2>"$w/err" || {{ cat "$w/err" >&2; exit 1; }};'
    " fpr=$($g --with-colons --list-keys | awk -F: '/^fpr:/ {{print $10; exit}}');"
    + PAUSE_STEP_CA
    + ' tar -C {path} -cpzf - . | $g --trust-model always --recipient "$fpr" --encrypt'
    ' --output "$w/backup.gpg"'
    + RESUME_STEP_CA
    + ' rm -rf "$w/gnupg"; sha256sum "$w/backup.gpg" | cut -c1-64'
)


@operation()
def backed_up(*, path: str, store: Store, recipient_key: str, retention_days: int) -> Commands:
    """
    Upload an encrypted backup of the CA state unless the latest backup holds this state.

    + path: the CA's `$STEPPATH`
    + store: the S3 bucket and prefix
    + recipient_key: armored GnuPG public key the backup is encrypted to
    + retention_days: backups older than this are deleted (never the latest)
    """
    files = host.get_fact(CAFiles, path=path)
    if not files:
        raise OperationError(f"no CA state at {path} to back up")
    digest = state_digest(files)
    latest = _latest(store)
    if latest and latest["state"] == digest:
        host.noop(f"the latest backup ({latest['key']}) holds this CA state")
        return
    yield RunTimeStep(_backup, path, store, recipient_key, retention_days, digest)


def _backup(
    state: State,
    host: Remote,
    path: str,
    store: Store,
    recipient_key: str,
    retention_days: int,
    digest: str,
) -> bool:
    """Run time: pack and encrypt on the host (the recipient key on stdin), upload the
    ciphertext from memory."""
    try:
        ok, out = host.run(script(_PACK, work=WORK, path=path), stdin=recipient_key)
        if not ok:
            return host.fail(f"packing and encrypting the CA state failed: {out.stderr}")
        expected = out.stdout.strip()
        buffer = BytesIO()
        if not host.get(f"{WORK}/backup.gpg", buffer):
            return host.fail("fetching the encrypted backup failed")
    finally:
        host.run(script("rm -rf {w}", w=WORK))
    data = buffer.getvalue()
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
    client.put_object(Bucket=store.bucket, Key=store.latest, Body=key.encode(), Metadata=meta)
    removed = _expire(store, keep=key, days=retention_days, now=now)
    host.log(
        f"backup s3://{store.bucket}/{key} ({len(data)} bytes)"
        + (f"; {removed} expired backup(s) deleted" if removed else "")
    )
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
            Delete={"Objects": [{"Key": name}, {"Key": f"{name}.sha256"}]},
        )
    return len(old)


def fetch_backup(store: Store, key: str) -> tuple[str, bytes, str]:
    """`(key, ciphertext, state digest)` of a backup, its SHA-256 checked: raises on mismatch."""
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


_MODES = " ".join(
    f'[ ! -e "$n/{name}" ] || chmod {mode} "$n/{name}";'.replace('/"', '"')
    for name, (mode, _) in MODES.items()
)

_RESTORE = (
    "set -e; umask 077; w={work}; n={path}.incoming; "
    + cleanup_on_exit('rm -rf "$w"')
    + ' g="gpg --homedir $w/gnupg --batch --quiet --no-tty";'
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
) -> Commands:
    """
    Restore the CA state from an S3 backup unless this host already holds that state.

    + path: the CA's `$STEPPATH`
    + store: the S3 bucket and prefix
    + key: an object key, or `latest`
    + private_key: armored GnuPG private key that decrypts the backup (operator's)
    + any_root: accept a backup of another CA than the one this host holds
    + pin: the root the backup must have (operations/roots.py); it overrides `any_root`
    """
    key, data, digest = fetch_backup(store, key)
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
    yield RunTimeStep(_restore, path, key, data, private_key, expect_root)
    yield from restore_recorded(source)


def restore_recorded(source: str) -> Commands:
    """Record on the host what was restored there."""
    directory = raw("install -d -m 0700 {d}", d=RESTORE_MARKER.rsplit("/", 1)[0])
    yield StringCommand(directory + " && " + replace_file(RESTORE_MARKER, source + "\n", "0600"))


def _restore(
    state: State, host: Remote, path: str, key: str, data: bytes, private_key: str, expect_root: str
) -> bool:
    """Run time: the ciphertext staged in tmpfs, the private key on stdin only; decrypt,
    check, swap in."""
    ok, _ = host.run(script("rm -rf {w}; install -d -m 0700 {w}", w=WORK))
    if not ok:
        return host.fail(f"cannot create {WORK}")
    if not host.put(BytesIO(data), f"{WORK}/backup.gpg"):
        host.run(script("rm -rf {w}", w=WORK))
        return host.fail("staging the backup failed")
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
