"""CA backups: state digests, checksum checks before anything is touched, retention."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
from collections.abc import Callable

import boto3
import pytest
from moto import mock_aws
from pyinfra.api import OperationError

import tests.unit.scripts.backups as scripts
from etcd_step_pki.operations.backup_store import (
    DATA_KEY,
    Kms,
    Store,
    backup_key,
    expire,
    fetch_backup,
    fetch_data_key,
    new_data_key,
    state_digest,
    unwrapped,
)

STORE = Store("backups", "step-ca", None, "us-east-1")


def test_the_state_digest_depends_on_every_file_and_not_on_order() -> None:
    files = {"certs/root_ca.crt": "a" * 64, "db/bbolt.db": "b" * 64}
    assert state_digest(files) == state_digest(dict(reversed(list(files.items()))))
    assert state_digest(files) != state_digest({**files, "db/bbolt.db": "c" * 64})


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="backups")
        yield client


def _put(client, key: str, body: bytes, recorded: bytes | None = None) -> None:
    client.put_object(Bucket="backups", Key=key, Body=body, Metadata={"state-sha256": "s"})
    digest = hashlib.sha256(recorded if recorded is not None else body).hexdigest()
    client.put_object(Bucket="backups", Key=f"{key}.sha256", Body=f"{digest}  x\n".encode())


def test_fetch_checks_the_checksum_and_follows_latest(bucket) -> None:
    _put(bucket, "step-ca/2026/11/a.tar.gz.gpg", b"ciphertext")
    bucket.put_object(Bucket="backups", Key="step-ca/latest", Body=b"step-ca/2026/11/a.tar.gz.gpg")
    key, data, meta = fetch_backup(STORE, "latest")
    assert (key, data, meta["state-sha256"]) == ("step-ca/2026/11/a.tar.gz.gpg", b"ciphertext", "s")
    _put(bucket, "step-ca/2026/11/b.tar.gz.gpg", b"damaged", recorded=b"original")
    with pytest.raises(OperationError, match="does not match its checksum"):
        fetch_backup(STORE, "step-ca/2026/11/b.tar.gz.gpg")
    with pytest.raises(OperationError, match="cannot read"):
        fetch_backup(STORE, "step-ca/none.tar.gz.gpg")


def test_no_backup_yet(bucket) -> None:
    with pytest.raises(OperationError, match="no backup"):
        fetch_backup(STORE, "latest")


def test_retention_deletes_old_backups_but_never_the_kept_one(bucket) -> None:
    ours = [backup_key(STORE, dt.datetime(2026, 1, day, tzinfo=dt.UTC)) for day in (1, 2, 3)]
    for name in ours:
        _put(bucket, name, b"x")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=40)
    assert expire(STORE, keep=ours[1], days=30, now=future) == 1
    left = {o["Key"] for o in bucket.list_objects_v2(Bucket="backups")["Contents"]}
    assert left == {name + end for name in ours[1:] for end in ("", ".sha256")}


def test_retention_keeps_the_newest_and_touches_no_other_ca_s_objects(bucket) -> None:
    old, newest = (backup_key(STORE, dt.datetime(2026, 1, d, tzinfo=dt.UTC)) for d in (1, 2))
    # Another CA whose prefix lies inside this one's, with its only backup; and objects of
    # this prefix that no backup of this CA is named like.
    inner = Store("backups", "step-ca/other", None, "us-east-1")
    theirs = backup_key(inner, dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    foreign = ["step-ca/2026/01/notes.tar.gz.gpg", "step-ca/ca-backup-20260101T000000Z.tar.gz.gpg"]
    for name in (old, newest, theirs, *foreign):
        _put(bucket, name, b"x")
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    # A run whose own upload is not the newest (kept: the newest as well).
    assert expire(STORE, keep="step-ca/2025/12/gone.tar.gz.gpg", days=30, now=future) == 1
    left = {o["Key"] for o in bucket.list_objects_v2(Bucket="backups")["Contents"]}
    assert {newest, theirs, *foreign} <= left and old not in left


def test_a_kms_data_key_unwraps_only_with_its_key_and_for_its_backup(bucket) -> None:
    kms_client = boto3.client("kms", region_name="us-east-1")
    mine = kms_client.create_key()["KeyMetadata"]
    other = kms_client.create_key()["KeyMetadata"]
    kms = Kms(mine["KeyId"], None, "us-east-1")
    assert kms.arn() == mine["Arn"]
    key = "step-ca/2026/12/ca-backup-x.tar.gz.gpg"
    secret, wrapped, arn = new_data_key(kms, key)
    assert arn == mine["Arn"] and len(base64.b64decode(secret)) == 32
    assert base64.b64decode(secret) not in wrapped
    assert unwrapped(kms, key, wrapped) == secret
    # Under another key, or for another backup (the context binds it to its object): refused.
    with pytest.raises(Exception, match=r"AccessDenied|IncorrectKey"):
        unwrapped(Kms(other["KeyId"], None, "us-east-1"), key, wrapped)
    with pytest.raises(Exception, match="InvalidCiphertext"):
        unwrapped(kms, "step-ca/2026/12/another.tar.gz.gpg", wrapped)
    with pytest.raises(OperationError, match="KMS key 'alias/none'"):
        Kms("alias/none", None, "us-east-1").arn()


def test_a_kms_restore_is_refused_before_any_change_when_the_backup_does_not_fit(bucket) -> None:
    kms_client = boto3.client("kms", region_name="us-east-1")
    mine = kms_client.create_key()["KeyMetadata"]
    other = kms_client.create_key()["KeyMetadata"]
    kms = Kms(mine["KeyId"], None, "us-east-1")
    key = "step-ca/2026/12/b.tar.gz.gpg"
    with pytest.raises(OperationError, match="encrypted to a GnuPG recipient"):
        fetch_data_key(STORE, key, kms, {"encryption": "gpg"})
    with pytest.raises(OperationError, match=f"wrapped by KMS key {other['Arn']}"):
        fetch_data_key(STORE, key, kms, {"encryption": "kms", "kms-key": other["Arn"]})
    meta = {"encryption": "kms", "kms-key": mine["Arn"]}
    with pytest.raises(OperationError, match="has no wrapped data key"):
        fetch_data_key(STORE, key, kms, meta)
    bucket.put_object(Bucket="backups", Key=f"{key}{DATA_KEY}", Body=b"wrapped")
    assert fetch_data_key(STORE, key, kms, meta) == b"wrapped"


@pytest.mark.parametrize(
    "render",
    [
        lambda: scripts.backup_pack("kms"),
        lambda: scripts.restore("kms"),
        lambda: scripts.restore("gpg", expect_root=""),
    ],
    ids=["pack-kms", "restore-kms", "restore-any-root"],
)
def test_the_other_branches_of_the_scripts_pass_shellcheck(render: Callable[[], str]) -> None:
    """The branches the shared samples (tests/unit/scripts/backups.py) do not render."""
    text = render()
    checked = subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", "-"], input=text, text=True, check=False
    )
    assert checked.returncode == 0


def test_secrets_reach_the_scripts_on_stdin_only() -> None:
    """The recipient key, the data key and the private key are read from standard input (or
    its file in the work directory): no rendered script holds one."""
    assert 'cat >"$w/dk"' in scripts.backup_pack("kms")
    assert "g --import 2>" in scripts.backup_pack("gpg")
    assert 'cat >"$w/dk"' in scripts.restore("kms")
    assert "g --import 2>/dev/null" in scripts.restore("gpg")


def test_a_restore_stages_its_manifest_and_every_other_backup_s(bucket) -> None:
    import io
    import tarfile

    from etcd_step_pki.operations.backup_manifests import OTHERS, staged_manifests
    from etcd_step_pki.operations.backup_store import latest_backup

    names = [backup_key(STORE, dt.datetime(2026, 1, day, tzinfo=dt.UTC)) for day in (1, 2, 3)]
    for name in names:
        _put(bucket, name, b"x")
        manifest = f"etcd-step-pki CA backup\nobject {name}\n".encode()
        bucket.put_object(Bucket="backups", Key=f"{name}.manifest", Body=manifest)
        bucket.put_object(Bucket="backups", Key=f"{name}.manifest.sig", Body=b"sig " + manifest)
    # Another CA's backup under a prefix inside this one's is none of this CA's.
    _put(bucket, backup_key(Store("backups", "step-ca/x", None, ""), dt.datetime.now(dt.UTC)), b"y")
    bucket.put_object(Bucket="backups", Key="step-ca/latest", Body=manifest)
    assert latest_backup(STORE)["key"] == names[2]  # named in the manifest `latest` holds
    staged = staged_manifests(STORE, names[0], allow_older=False)
    assert staged["object"] == names[0].encode()
    assert staged["manifest"].startswith(b"etcd-step-pki CA backup\nobject " + names[0].encode())
    with tarfile.open(fileobj=io.BytesIO(staged[OTHERS])) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert sorted(members) == ["0.manifest", "0.manifest.sig", "1.manifest", "1.manifest.sig"]
    assert {members["0.manifest"], members["1.manifest"]} == {
        f"etcd-step-pki CA backup\nobject {n}\n".encode() for n in names[1:]
    }
    # An older backup allowed: nothing else is staged.
    assert set(staged_manifests(STORE, names[0], allow_older=True)) == {
        "object",
        "manifest",
        "manifest.sig",
    }
