"""What a backup is, signed: each backup's manifest names its object, when it was made, the
digest of the CA state and of the ciphertext, and the root, and the CA's backup signing key
signs it on the cert-manager (`<object>.manifest`, `.manifest.sig`). `latest` carries the
newest backup's manifest and its signature.

Anyone who can write the bucket can point `latest` at an older backup, validly signed, and a
restore would bring back an old CA database, undoing every revocation since. A restore
therefore verifies, on the target, the chosen backup's manifest (it must name that object and
its ciphertext) and those of every other backup of the CA: one of them signed and made later
refuses the restore unless the operator allows an older one (`ca_restore_allow_older`). A
copy of an old backup under a new name has no manifest naming it, and a backup made before
manifests has none: either is older than any backup that has one.
"""

from __future__ import annotations

import io
import tarfile
from typing import Any

from etcd_step_pki.operations.backup_store import Store, backups

MANIFEST = ".manifest"
HEADER = "etcd-step-pki CA backup"
OTHERS = "others.tar"  # the manifests of the CA's other backups, staged in one file


def _signed_manifest(client: Any, store: Store, key: str) -> tuple[bytes, bytes] | None:
    """The manifest of the backup `key` and its signature, None when it has none."""
    try:
        text = client.get_object(Bucket=store.bucket, Key=f"{key}{MANIFEST}")["Body"].read()
        signature = client.get_object(Bucket=store.bucket, Key=f"{key}{MANIFEST}.sig")["Body"]
    except client.exceptions.ClientError:
        return None
    return bytes(text), bytes(signature.read())


def staged_manifests(store: Store, key: str, *, allow_older: bool) -> dict[str, bytes]:
    """The files a restore of `key` verifies on the target beside the backup: its own
    manifest (when it has one: backups made before manifests have none), the object it must
    name, and (unless `allow_older`) the manifests of the CA's other backups, in one
    archive. Only what verifies against the signer key counts there."""
    client = store.client()
    files = {"object": key.encode()}
    own = _signed_manifest(client, store, key)
    if own is not None:
        files |= {"manifest": own[0], "manifest.sig": own[1]}
    if allow_older:
        return files
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        others = sorted(name for name, _ in backups(store, client) if name != key)
        for index, name in enumerate(others):
            found = _signed_manifest(client, store, name)
            for end, data in zip(("", ".sig"), found or (), strict=False):
                item = tarfile.TarInfo(f"{index}{MANIFEST}{end}")
                item.size = len(data)
                tar.addfile(item, io.BytesIO(data))
    return files | {OTHERS: archive.getvalue()}
