"""The S3 bucket of CA backups and the AWS KMS key of envelope encryption: the controller's
client code (boto3, any S3-compatible endpoint). The controller carries only ciphertext, in
memory, to and from S3; a plaintext data key lives only in its memory and on a host's
standard input.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pyinfra.api import OperationError

SUFFIX = ".tar.gz.gpg"
DATA_KEY = ".datakey"  # beside a KMS backup: its data key, wrapped by KMS
# A backup's objects: the ciphertext, its checksum, its signature, its KMS-wrapped data key,
# its manifest and the manifest's signature (operations/backup_manifests.py).
BESIDE = ("", ".sha256", ".sig", DATA_KEY, ".manifest", ".manifest.sig")


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


def latest_backup(store: Store) -> dict[str, Any] | None:
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
    # The newest backup's signed manifest (operations/backup_manifests.py), or, as backups
    # made before manifests left it, the object's name alone.
    named = [
        line.removeprefix("object ") for line in body.splitlines() if line.startswith("object ")
    ]
    return {
        "key": named[0] if named else body.strip(),
        "state": meta.get("state-sha256"),
        "encryption": meta.get("encryption", "gpg"),
    }


def new_data_key(kms: Kms, key: str) -> tuple[str, bytes, str]:
    """Run time: a new data key for the backup `key` from KMS: `(plaintext as the host's
    standard input, the key wrapped by KMS, the ARN of the key that wrapped it)`."""
    made = kms.client().generate_data_key(
        KeyId=kms.key_id, KeySpec="AES_256", EncryptionContext=data_key_context(key)
    )
    secret = base64.b64encode(made["Plaintext"]).decode() + "\n"
    return secret, made["CiphertextBlob"], str(made["KeyId"])


def backup_key(store: Store, when: dt.datetime) -> str:
    """The object of a backup made at `when` (UTC)."""
    return f"{store.prefix}/{when:%Y/%m}/ca-backup-{when:%Y%m%dT%H%M%SZ}{SUFFIX}"


# A backup's object below its store's prefix, as `backup_key` names it: nothing else there
# (another CA's backups under a prefix inside this one's included) is this CA's.
_BACKUP_NAME = re.compile(r"\d{4}/\d{2}/ca-backup-\d{8}T\d{6}Z" + re.escape(SUFFIX))


def backups(store: Store, client: Any) -> list[tuple[str, dt.datetime]]:
    """This store's backups: `(object, when it was written)`."""
    found = []
    start = f"{store.prefix}/"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=start):
        for item in page.get("Contents", []):
            name = item["Key"]
            if _BACKUP_NAME.fullmatch(name.removeprefix(start)):
                found.append((name, item["LastModified"]))
    return found


def expire(store: Store, keep: str, days: int, now: dt.datetime) -> int:
    """Delete this store's backups (with what lies beside them) older than `days`; never
    `keep`, never the newest, never an object this store did not name (`_BACKUP_NAME`)."""
    client = store.client()
    cutoff = now - dt.timedelta(days=days)
    found = backups(store, client)
    newest = max((name for name, _ in found), default=None)
    old = [name for name, when in found if when < cutoff and name not in (keep, newest)]
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
        latest = latest_backup(store)
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
