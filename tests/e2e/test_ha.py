"""CA high availability and disaster recovery: replication, S3 backups and restores,
failover to the backup cert-manager."""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import renews_by_hand
from tests.harness.hosts import (
    REPO,
    ROOT_RECORD,
    SIGNER_RECORD,
    Scenario,
    TestHost,
    docker_exec,
    scenario_hosts,
    set_inventory,
)
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.s3 import (
    BUCKET,
    CREDENTIALS,
    backup_data,
    boto_args,
    latest_object,
    restore_data,
)

pytestmark = pytest.mark.e2e

CA = "/etc/step-ca"
SSL = "/etc/etcd/ssl"
PRIMARY, BACKUP = "etcd-k8s-1", "etcd-k8s-2"
SUBNET = "172.28.68.0/24"
NEWCOMER = TestHost("client-2", "172.28.68.102", ("etcd_clients",))


def _ca_files(scenario: Scenario, host: str) -> str:
    return docker_exec(
        scenario, host, f"cd {CA} && find . -type f -print0 | sort -z | xargs -0 sha256sum"
    ).stdout


def _fingerprint(scenario: Scenario, host: str, cert: str = f"{CA}/certs/root_ca.crt") -> str:
    return docker_exec(
        scenario, host, f"openssl x509 -in {cert} -outform DER | sha256sum | cut -c1-64"
    ).stdout.strip()


@pytest.fixture(scope="module")
def ha_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-ha", SUBNET, release_archives)
    scenario.hosts.append(NEWCOMER)
    with scenario_hosts(scenario) as started:
        set_inventory(started, ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"])
        run_pyinfra(started, "deploys/cluster.py")
        yield started


def _run(scenario: Scenario, *args: str, check: bool = True):
    return run_pyinfra(scenario, *args, env=CREDENTIALS, check=check)


def test_replication_copies_the_whole_state(ha_hosts: Scenario) -> None:
    assert _ca_files(ha_hosts, BACKUP) == _ca_files(ha_hosts, PRIMARY)
    assert "./db/bbolt.db" in _ca_files(ha_hosts, BACKUP)
    assert _fingerprint(ha_hosts, BACKUP) == _fingerprint(ha_hosts, PRIMARY)
    modes = docker_exec(ha_hosts, BACKUP, f"stat -c '%a %U' {CA}/secrets/*").stdout.split()
    assert set(modes) == {"400", "root"}
    state = docker_exec(ha_hosts, BACKUP, "systemctl is-active step-ca; systemctl is-enabled step-ca",
                        check=False).stdout.split()  # fmt: skip
    assert state == ["inactive", "disabled"]
    assert _run(ha_hosts, "deploys/cluster.py").changes == {}
    assert _run(ha_hosts, "deploys/replicate_ca.py").changes == {}


def test_a_changed_database_is_replicated_through_ciphertext_only(ha_hosts: Scenario) -> None:
    # A renewal writes to the CA's database; the next replication carries it over.
    docker_exec(ha_hosts, "etcd-k8s-3", f"STEPPATH=/etc/step /opt/bin/step ca renew --force "
                f"{SSL}/etcd-k8s-3-client.crt {SSL}/etcd-k8s-3-client.key >/dev/null 2>&1")  # fmt: skip
    assert _ca_files(ha_hosts, BACKUP) != _ca_files(ha_hosts, PRIMARY)
    before = _snapshot_controller_files()
    run = _run(ha_hosts, "deploys/replicate_ca.py")
    assert run.changes == {BACKUP: ["Replicate the CA | CA state from etcd-k8s-1"]}
    assert _ca_files(ha_hosts, BACKUP) == _ca_files(ha_hosts, PRIMARY)
    # Nothing of the CA's secrets reached the controller's disk or output.
    password = docker_exec(ha_hosts, PRIMARY, f"cat {CA}/secrets/password").stdout.strip()
    key_line = docker_exec(
        ha_hosts, PRIMARY, f"sed -n 2p {CA}/secrets/intermediate_ca_key"
    ).stdout.strip()
    for secret in (password, key_line):
        assert secret not in run.output
        assert not _files_containing(secret.encode(), _snapshot_controller_files() - before)
    assert (
        docker_exec(ha_hosts, BACKUP, "ls -A /run/etcd-step-pki", check=False).stdout.strip() == ""
    )


def _snapshot_controller_files() -> set[Path]:
    roots = [
        Path(tempfile.gettempdir()),
        REPO,
        Path.home() / ".cache" / "etcd-step-pki" / "scenarios",
    ]
    found = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [
                d for d in dirnames if d not in (".git", ".venv", "chroots", "node_modules")
            ]
            for name in filenames:
                found.add(Path(dirpath) / name)
    return found


def _files_containing(needle: bytes, paths: set[Path]) -> list[Path]:
    hits = []
    for path in paths:
        try:
            if path.is_file() and path.stat().st_size < 50_000_000 and needle in path.read_bytes():
                hits.append(path)
        except OSError:
            continue
    return hits


def _objects(s3: dict[str, str]) -> dict[str, bytes]:
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_args())
    listing = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listing
    }


def test_backup_to_s3_is_encrypted_to_the_recipient(ha_hosts: Scenario, s3, keys) -> None:
    before = _snapshot_controller_files()
    run = _run(ha_hosts, "deploys/backup_ca.py", *backup_data(s3, keys))
    password = docker_exec(ha_hosts, PRIMARY, f"cat {CA}/secrets/password").stdout.strip()
    assert password not in run.output
    assert not _files_containing(password.encode(), _snapshot_controller_files() - before)
    assert set(run.changes) == {PRIMARY}
    objects = _objects(s3)
    latest = latest_object(objects["step-ca/latest"])
    assert latest.startswith("step-ca/") and latest.endswith(".tar.gz.gpg")
    data = objects[latest]
    # Signed by the CA's own backup key, whose public half the controller now keeps.
    signer = ha_hosts.state_dir / SIGNER_RECORD
    assert "BEGIN PGP PUBLIC KEY BLOCK" in signer.read_text()
    assert _signed_by(signer, data, objects[f"{latest}.sig"])
    assert not _signed_by(signer, data + b"x", objects[f"{latest}.sig"])
    import hashlib

    assert objects[f"{latest}.sha256"].decode().split()[0] == hashlib.sha256(data).hexdigest()
    # Only the recipient's key decrypts it, into the whole CA state.
    assert keys["other"].decrypt(data).returncode != 0
    plain = keys["backup"].decrypt(data)
    assert plain.returncode == 0
    listing = subprocess.run(["tar", "-tzf", "-"], input=plain.stdout, capture_output=True,
                             check=True).stdout.decode()  # fmt: skip
    for name in ("./config/ca.json", "./certs/root_ca.crt", "./secrets/root_ca_key",
                 "./secrets/intermediate_ca_key", "./secrets/password", "./db/bbolt.db"):  # fmt: skip
        assert name in listing.splitlines(), name
    assert (
        docker_exec(ha_hosts, PRIMARY, "ls -A /run/etcd-step-pki", check=False).stdout.strip() == ""
    )
    # Nothing changed since: the second run uploads nothing.
    assert _run(ha_hosts, "deploys/backup_ca.py", *backup_data(s3, keys)).changes == {}
    assert set(_objects(s3)) == set(objects)


def _signed_by(public_key: Path, data: bytes, signature: bytes) -> bool:
    """Whether `signature` is a valid signature of `data` by the key in `public_key`."""
    with tempfile.TemporaryDirectory() as home:
        gpg = ["gpg", "--homedir", home, "--batch", "--quiet"]
        subprocess.run([*gpg, "--import", str(public_key)], check=True, capture_output=True)
        sig = Path(home) / "backup.sig"
        sig.write_bytes(signature)
        checked = subprocess.run([*gpg, "--trust-model", "always", "--verify", str(sig), "-"],
                                 input=data, capture_output=True, check=False)  # fmt: skip
        return checked.returncode == 0


def test_bad_backups_are_refused_and_change_nothing(ha_hosts: Scenario, s3, keys) -> None:
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_args())
    latest = latest_object(_objects(s3)["step-ca/latest"])
    good = _objects(s3)[latest]
    before = _ca_files(ha_hosts, PRIMARY)
    signature = _objects(s3)[f"{latest}.sig"]
    cases = [
        ("corrupted", good[:-64] + b"x" * 64, signature, None, "does not match its checksum"),
        ("wrong key", good, signature, keys["other"], "does not decrypt or unpack"),
        ("unsigned", good, None, None, "has no signature"),
        # Signed by another key than the CA's (whose public half the first backup recorded
        # on the controller): refused before anything else is looked at.
        ("forged", good, keys["other"].sign(good), None, "not signed by the recorded signer"),
    ]
    for label, body, sig, key, message in cases:
        name = f"step-ca/test/{label.replace(' ', '-')}.tar.gz.gpg"
        client.put_object(Bucket=BUCKET, Key=name, Body=body)
        client.put_object(Bucket=BUCKET, Key=f"{name}.sha256",
                          Body=objects_sha(good) + "  x\n")  # fmt: skip
        if sig is not None:
            client.put_object(Bucket=BUCKET, Key=f"{name}.sig", Body=sig)
        # Older than the CA's signed backups (it has no manifest), allowed: what is looked at.
        run = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys, key),
                   "--data", f"ca_restore_key={name}", "--data", "ca_restore_allow_older=true",
                   check=False)  # fmt: skip
        assert run.returncode != 0, label
        assert message in run.output, (label, run.output[-2000:])
        assert _ca_files(ha_hosts, PRIMARY) == before, label
    missing = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys)[:-2],
                   "--data", "ca_restore_private_key=/nonexistent.asc", check=False)  # fmt: skip
    assert missing.returncode != 0 and "ca_restore_private_key" in missing.output
    assert "Starting operation" not in missing.output


def test_without_the_signers_record_nothing_is_backed_up_or_restored(
    ha_hosts: Scenario, s3, keys
) -> None:
    """A controller without the record of the CA's backup signer (a fresh checkout) trusts no
    signer: once the bucket holds this CA's backups, neither a backup nor a restore runs."""
    signer = ha_hosts.state_dir / SIGNER_RECORD
    kept = signer.read_bytes()
    objects = _objects(s3)
    before = _ca_files(ha_hosts, PRIMARY)
    signer.unlink()
    try:
        backup = _run(ha_hosts, "deploys/backup_ca.py", *backup_data(s3, keys), check=False)
        assert backup.returncode != 0
        assert f"the record of the key that signs them is missing ({signer}" in backup.output
        restore = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys), check=False)
        assert restore.returncode != 0 and "no recorded backup signer key" in restore.output
        assert backup.changes == {} and restore.changes == {}
        assert not signer.exists()
        assert _objects(s3) == objects
        assert _ca_files(ha_hosts, PRIMARY) == before
    finally:
        signer.write_bytes(kept)


def objects_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_restore_from_s3_after_the_ca_state_is_lost(ha_hosts: Scenario, s3, keys) -> None:
    fingerprint = _fingerprint(ha_hosts, PRIMARY)
    password = docker_exec(ha_hosts, PRIMARY, f"cat {CA}/secrets/password").stdout.strip()
    docker_exec(ha_hosts, PRIMARY, f"systemctl stop step-ca && rm -rf {CA}")
    # At the highest verbosity, as an operator debugging a restore would run it.
    run = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys), "-vvv", "--debug")
    assert PRIMARY in run.changes
    assert "[pyinfra.api" in run.output  # debug logging was on
    # Neither the operator's private key (it reaches the host on stdin) nor the CA password
    # restored with the state shows.
    armored = keys["backup"].private.read_text().splitlines()
    body = [line for line in armored if len(line) > 40 and not line.startswith("-----")]
    assert body and not any(line in run.output for line in body)
    assert password not in run.output
    assert _fingerprint(ha_hosts, PRIMARY) == fingerprint
    health = docker_exec(ha_hosts, PRIMARY, f"curl -sS --cacert {CA}/certs/root_ca.crt "
                         "https://etcd-k8s-1:9000/health").stdout  # fmt: skip
    assert json.loads(health) == {"status": "ok"}
    modes = docker_exec(ha_hosts, PRIMARY, f"stat -c '%a %U' {CA}/secrets/*").stdout.split()
    assert set(modes) == {"400", "root"}
    # Certificates issued before the loss still renew.
    renews_by_hand(ha_hosts, "client-1", "client")
    assert _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys)).changes == {}


def test_old_backups_are_not_restored_in_place_of_the_newest(ha_hosts: Scenario, s3, keys) -> None:
    """Someone who can write the bucket points `latest` at an older, validly signed backup
    (its manifest and signature, replayed), or copies it under a newer name: refused on the
    target, nothing changed, unless the operator allows an older backup."""
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_args())

    def backed_up() -> dict[str, bytes]:
        renews_by_hand(ha_hosts, "client-1", "client")  # the CA's database changes
        time.sleep(1)  # manifests record seconds
        _run(ha_hosts, "deploys/backup_ca.py", *backup_data(s3, keys))
        return _objects(s3)

    # An older backup (never restored here), then the newest.
    objects = backed_up()
    old_latest, old_signature = objects["step-ca/latest"], objects["step-ca/latest.sig"]
    old = latest_object(old_latest)
    backed_up()
    new = latest_object(_objects(s3)["step-ca/latest"])
    assert new != old and _objects(s3)[f"{new}.manifest"] == _objects(s3)["step-ca/latest"]
    assert _signed_by(ha_hosts.state_dir / SIGNER_RECORD, _objects(s3)[f"{new}.manifest"],
                      _objects(s3)["step-ca/latest.sig"])  # fmt: skip
    newest = _objects(s3)["step-ca/latest"], _objects(s3)["step-ca/latest.sig"]
    meta = client.head_object(Bucket=BUCKET, Key="step-ca/latest")["Metadata"]
    before = _ca_files(ha_hosts, PRIMARY)
    copy = "step-ca/2099/01/ca-backup-20990101T000000Z.tar.gz.gpg"
    for end in ("", ".sha256", ".sig"):
        client.put_object(Bucket=BUCKET, Key=f"{copy}{end}", Body=objects[f"{old}{end}"])
    try:
        client.put_object(Bucket=BUCKET, Key="step-ca/latest", Body=old_latest)
        client.put_object(Bucket=BUCKET, Key="step-ca/latest.sig", Body=old_signature)
        for key in ("latest", old, copy):
            run = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys),
                       "--data", f"ca_restore_key={key}", check=False)  # fmt: skip
            assert run.returncode != 0, key
            assert f"{new} was made at" in run.output and "Nothing was changed" in run.output, key
            assert _ca_files(ha_hosts, PRIMARY) == before, key
        # Allowed by the operator: the older backup is restored (here, its copy).
        allowed = _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys),
                       "--data", f"ca_restore_key={copy}", "--data", "ca_restore_allow_older=true")  # fmt: skip
        assert PRIMARY in allowed.changes and _ca_files(ha_hosts, PRIMARY) != before
    finally:
        client.put_object(Bucket=BUCKET, Key="step-ca/latest", Body=newest[0], Metadata=meta)
        client.put_object(Bucket=BUCKET, Key="step-ca/latest.sig", Body=newest[1])
        for end in ("", ".sha256", ".sig"):
            client.delete_object(Bucket=BUCKET, Key=f"{copy}{end}")
    # The newest again, as a restore of `latest` brings it back (once).
    assert PRIMARY in _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys)).changes
    assert _run(ha_hosts, "deploys/restore_ca.py", *restore_data(s3, keys)).changes == {}
    renews_by_hand(ha_hosts, "client-1", "client")


KMS_PREFIX = "step-ca-kms"


def _kms_key(s3: dict[str, str]) -> dict[str, str]:
    """A new KMS key on the test server: its KeyId and Arn."""
    client = boto3.client("kms", endpoint_url=s3["endpoint"], **boto_args())
    return client.create_key(Description="etcd-step-pki test")["KeyMetadata"]


def _kms_data(s3: dict[str, str], key_id: str) -> list[str]:
    """`--data` of backup_ca.py and restore_ca.py with KMS envelope encryption."""
    return [
        "--data", f"ca_backup_bucket={BUCKET}",
        "--data", f"ca_backup_endpoint_url={s3['endpoint']}",
        "--data", f"ca_backup_prefix={KMS_PREFIX}",
        "--data", "ca_backup_encryption=kms",
        "--data", f"ca_backup_kms_key_id={key_id}",
        "--data", f"ca_backup_kms_endpoint_url={s3['endpoint']}",
    ]  # fmt: skip


def _unwrap(s3: dict[str, str], key: str, wrapped: bytes) -> bytes:
    client = boto3.client("kms", endpoint_url=s3["endpoint"], **boto_args())
    context = {"etcd-step-pki": "ca-backup", "object": key}
    return client.decrypt(CiphertextBlob=wrapped, EncryptionContext=context)["Plaintext"]


@pytest.fixture(scope="module")
def kms_key(s3: dict[str, str]) -> dict[str, str]:
    return _kms_key(s3)


def test_kms_backup_wraps_a_data_key_and_restores_through_kms(
    ha_hosts: Scenario, s3, keys, kms_key
) -> None:
    data = _kms_data(s3, kms_key["KeyId"])
    run = _run(ha_hosts, "deploys/backup_ca.py", *data, "-vvv", "--debug")
    assert set(run.changes) == {PRIMARY}
    objects = {k: v for k, v in _objects(s3).items() if k.startswith(f"{KMS_PREFIX}/")}
    latest = latest_object(objects[f"{KMS_PREFIX}/latest"])
    assert {f"{latest}{end}" for end in ("", ".sha256", ".sig", ".datakey")} <= set(objects)
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_args())
    meta = client.head_object(Bucket=BUCKET, Key=latest)["Metadata"]
    assert meta["encryption"] == "kms" and meta["kms-key"] == kms_key["Arn"]
    # The data key comes back from KMS only, and it (not the GnuPG recipient) opens the backup.
    plain_key = _unwrap(s3, latest, objects[f"{latest}.datakey"])
    assert len(plain_key) == 32 and plain_key not in objects[f"{latest}.datakey"]
    secret = base64.b64encode(plain_key)
    assert keys["backup"].decrypt(objects[latest]).returncode != 0
    with tempfile.TemporaryDirectory() as home:
        sealed = Path(home) / "backup.gpg"  # the ciphertext, as in the bucket
        sealed.write_bytes(objects[latest])
        opened = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--quiet", "--pinentry-mode", "loopback",
             "--passphrase-fd", "0", "--decrypt", str(sealed)],
            input=secret + b"\n", capture_output=True, check=False,
        )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    listing = subprocess.run(["tar", "-tzf", "-"], input=opened.stdout, capture_output=True,
                             check=True).stdout.decode().splitlines()  # fmt: skip
    assert "./config/ca.json" in listing and "./secrets/root_ca_key" in listing
    # The plaintext data key: in no output, on no controller file, nowhere on the primary.
    assert secret.decode() not in run.output
    assert not _files_containing(secret, _snapshot_controller_files())
    assert not _files_containing(plain_key, _snapshot_controller_files())
    leftover = docker_exec(ha_hosts, PRIMARY, "ls -A /run/etcd-step-pki", check=False)
    assert leftover.stdout.strip() == ""
    assert _run(ha_hosts, "deploys/backup_ca.py", *data).changes == {}

    fingerprint = _fingerprint(ha_hosts, PRIMARY)
    docker_exec(ha_hosts, PRIMARY, f"systemctl stop step-ca && rm -rf {CA}")
    restore = _run(ha_hosts, "deploys/restore_ca.py", "--data", "ca_restore_from=s3", *data,
                   "-vvv", "--debug")  # fmt: skip
    assert PRIMARY in restore.changes
    assert secret.decode() not in restore.output
    assert _fingerprint(ha_hosts, PRIMARY) == fingerprint
    health = docker_exec(ha_hosts, PRIMARY, f"curl -sS --cacert {CA}/certs/root_ca.crt "
                         "https://etcd-k8s-1:9000/health").stdout  # fmt: skip
    assert json.loads(health) == {"status": "ok"}
    renews_by_hand(ha_hosts, "client-1", "client")
    again = _run(ha_hosts, "deploys/restore_ca.py", "--data", "ca_restore_from=s3", *data)
    assert again.changes == {}


def test_kms_with_a_wrong_key_is_refused_and_changes_nothing(
    ha_hosts: Scenario, s3, kms_key
) -> None:
    before_files = _ca_files(ha_hosts, PRIMARY)
    before_objects = set(_objects(s3))
    other = _kms_key(s3)
    # A restore under another KMS key than the one that wrapped the backup's data key.
    wrong = _run(ha_hosts, "deploys/restore_ca.py", "--data", "ca_restore_from=s3",
                 *_kms_data(s3, other["KeyId"]), check=False)  # fmt: skip
    assert wrong.returncode != 0
    assert f"wrapped by KMS key {kms_key['Arn']}" in wrong.output
    # A key KMS does not know: refused before a backup is made.
    unknown = _run(ha_hosts, "deploys/backup_ca.py", *_kms_data(s3, "alias/no-such-key"),
                   "--data", "ca_backup_prefix=step-ca-kms-unknown", check=False)  # fmt: skip
    assert unknown.returncode != 0 and "KMS key 'alias/no-such-key'" in unknown.output
    # Without a key id, kms is refused as a setting.
    unset = _run(ha_hosts, "deploys/backup_ca.py", "--data", "ca_backup_encryption=kms",
                 "--data", f"ca_backup_bucket={BUCKET}", check=False)  # fmt: skip
    assert unset.returncode != 0 and "ca_backup_kms_key_id" in unset.output
    assert "Starting operation" not in unset.output
    assert _ca_files(ha_hosts, PRIMARY) == before_files
    assert set(_objects(s3)) == before_objects


def test_restore_from_the_backup_cert_manager(ha_hosts: Scenario) -> None:
    _run(ha_hosts, "deploys/replicate_ca.py")
    fingerprint = _fingerprint(ha_hosts, PRIMARY)
    docker_exec(ha_hosts, PRIMARY, f"systemctl stop step-ca && rm -rf {CA}")
    source = ["--data", f"ca_restore_from={BACKUP}"]
    run = _run(ha_hosts, "deploys/restore_ca.py", *source)
    assert PRIMARY in run.changes
    assert _fingerprint(ha_hosts, PRIMARY) == fingerprint
    keys_of = (
        f"sha256sum {CA}/secrets/root_ca_key {CA}/secrets/intermediate_ca_key {CA}/config/ca.json"
    )
    assert (
        docker_exec(ha_hosts, PRIMARY, keys_of).stdout
        == docker_exec(ha_hosts, BACKUP, keys_of).stdout
    )
    health = docker_exec(ha_hosts, PRIMARY, f"curl -sS --cacert {CA}/certs/root_ca.crt "
                         "https://etcd-k8s-1:9000/health").stdout  # fmt: skip
    assert json.loads(health) == {"status": "ok"}
    assert _run(ha_hosts, "deploys/restore_ca.py", *source).changes == {}
    refused = _run(ha_hosts, "deploys/restore_ca.py", "--data", f"ca_restore_from={PRIMARY}",
                   check=False)  # fmt: skip
    assert refused.returncode != 0 and "ca_restore_from" in refused.output


def test_complete_disaster_rebuilds_from_backups(
    ha_hosts: Scenario, s3, keys, release_archives: Path, tmp_path: Path
) -> None:
    """New empty hosts: the CA from S3 first, then cluster.py, then the etcd snapshot."""
    put = f"/opt/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert={SSL}/root_ca.crt " \
          f"--cert={SSL}/etcd-k8s-1-client.crt --key={SSL}/etcd-k8s-1-client.key"  # fmt: skip
    docker_exec(ha_hosts, PRIMARY, f"{put} put /dr/key survived")
    snapshots = [
        "--data",
        f"etcd_snapshot_local_dir={tmp_path}",
        "--data",
        "etcd_snapshot_name=dr.db",
        "--data",
        f"ca_backup_recipient_key={keys['backup'].public}",
    ]
    _run(ha_hosts, "deploys/etcd_backup.py", *snapshots)
    _run(ha_hosts, "deploys/backup_ca.py", *backup_data(s3, keys))
    old_leaf = docker_exec(ha_hosts, "client-1", f"cat {SSL}/client-1-client.crt").stdout
    fingerprint = _fingerprint(ha_hosts, PRIMARY)

    scenario = fresh_scenario("pki-test-dr", "172.28.69.0/24", release_archives)
    with scenario_hosts(scenario) as fresh:
        # What the operator keeps with the inventory: the root's and the backup signer's
        # records, which the restore checks the backup against.
        for record in (ROOT_RECORD, SIGNER_RECORD):
            shutil.copy(ha_hosts.state_dir / record, fresh.state_dir / record)
        restore = restore_data(s3, keys)
        _run(fresh, "deploys/restore_ca.py", *restore)
        assert _fingerprint(fresh, PRIMARY) == fingerprint
        _run(fresh, "deploys/cluster.py")
        digest = (tmp_path / "dr.db.gpg.sha256").read_text().split()[0]
        _run(fresh, "deploys/etcd_restore.py",
             "--data", f"etcd_restore_snapshot={tmp_path / 'dr.db.gpg'}",
             "--data", f"etcd_restore_confirm={digest}",
             "--data", f"etcd_restore_private_key={keys['backup'].private}")  # fmt: skip
        got = docker_exec(fresh, PRIMARY, f"{put} get /dr/key --print-value-only").stdout.strip()
        assert got == "survived"
        # A certificate issued before the disaster verifies against the rebuilt PKI's root.
        docker_exec(fresh, "client-1", "cat > /tmp/old.crt", input=old_leaf)
        verify = docker_exec(
            fresh,
            "client-1",
            f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted /tmp/old.crt /tmp/old.crt",
        )
        assert verify.stdout.strip() == "/tmp/old.crt: OK"
        assert _run(fresh, "deploys/cluster.py").changes == {}
        assert _run(fresh, "deploys/restore_ca.py", *restore).changes == {}


def _paused_copy(seconds: int) -> str:
    """The pause that replication and backups take around their copy, with a slow copy: a
    `bash -c` command line."""
    from etcd_step_pki.operations.ca import STEP_CA_PAUSE
    from etcd_step_pki.templates import render_text

    copy = render_text(
        '{% from "macros/step_ca_paused.sh.j2" import step_ca_paused %}'
        "{% call step_ca_paused(pause.lock, pause.limit) %}sleep {{ seconds }}{% endcall %}",
        pause=STEP_CA_PAUSE,
        seconds=seconds,
    )
    return f"bash -c {shlex.quote(copy)}"


def _step_ca_state(scenario: Scenario) -> str:
    """`T` while step-ca is paused, `S` or `R` while it runs."""
    return docker_exec(
        scenario, PRIMARY, "ps -o stat= -p $(systemctl show -p MainPID --value step-ca)"
    ).stdout.strip()[:1]


def _wait_state(scenario: Scenario, states: str, seconds: float) -> float:
    """Seconds until step-ca's state is one of `states`; fails after `seconds`."""
    started = time.monotonic()
    while _step_ca_state(scenario) not in states:
        assert time.monotonic() - started < seconds, f"step-ca not in {states} after {seconds}s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_step_ca_resumes_whatever_happens_to_the_copy(ha_hosts: Scenario) -> None:
    """A dropped SSH connection, a terminated or a killed shell in the middle of a pause leave
    step-ca running: the signal traps resume it at once, the watchdog timer within its limit
    when nothing of the shell can run any more."""
    import paramiko

    from etcd_step_pki.operations.ca import STEP_CA_PAUSE

    # The SSH session of the copy drops: step-ca runs again, at the latest by the watchdog.
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(ha_hosts.host(PRIMARY).address, username="root",
                   key_filename=str(ha_hosts.key_file), allow_agent=False, look_for_keys=False)  # fmt: skip
    client.exec_command(_paused_copy(300))
    _wait_state(ha_hosts, "T", 10)
    client.get_transport().sock.close()  # type: ignore[union-attr]
    client.close()
    assert _wait_state(ha_hosts, "SR", STEP_CA_PAUSE.limit + 10) <= STEP_CA_PAUSE.limit + 10
    docker_exec(ha_hosts, PRIMARY, "pkill -KILL -f 'sleep 300'", check=False)
    # The copying shell is terminated: its trap resumes step-ca at once.
    start = f"setsid {_paused_copy(300)} >/dev/null 2>&1 & echo $! > /tmp/p"
    docker_exec(ha_hosts, PRIMARY, start)
    _wait_state(ha_hosts, "T", 10)
    docker_exec(ha_hosts, PRIMARY, "kill -TERM $(cat /tmp/p)")
    assert _wait_state(ha_hosts, "SR", 5) < 5
    docker_exec(ha_hosts, PRIMARY, "pkill -KILL -f 'sleep 300'", check=False)
    # The copying shell is killed outright (no trap runs): the watchdog resumes step-ca.
    docker_exec(ha_hosts, PRIMARY, start)
    _wait_state(ha_hosts, "T", 10)
    docker_exec(ha_hosts, PRIMARY, "kill -KILL $(cat /tmp/p); pkill -KILL -f 'sleep 300'",
                check=False)  # fmt: skip
    assert _wait_state(ha_hosts, "SR", STEP_CA_PAUSE.limit + 10) <= STEP_CA_PAUSE.limit + 10
    # Two copies at once take turns: the second waits for the first one's lock.
    first = subprocess.Popen(["docker", "exec", ha_hosts.container(PRIMARY), "sh", "-c",
                              _paused_copy(4)])  # fmt: skip
    time.sleep(1)
    started = time.monotonic()
    docker_exec(ha_hosts, PRIMARY, _paused_copy(1))
    assert time.monotonic() - started >= 3.5
    assert first.wait(timeout=30) == 0
    assert _step_ca_state(ha_hosts) in "SR"
    assert _run(ha_hosts, "deploys/replicate_ca.py").returncode == 0


def test_failover_to_the_backup(ha_hosts: Scenario) -> None:
    _run(ha_hosts, "deploys/replicate_ca.py")
    endpoints = "https://etcd-k8s-2:2379,https://etcd-k8s-3:2379"
    put = (
        f"/opt/bin/etcdctl --endpoints={endpoints} --cacert={SSL}/root_ca.crt "
        f"--cert={SSL}/client-1-client.crt --key={SSL}/client-1-client.key put /ha/{{}} ok"
    )
    subprocess.run(["docker", "stop", ha_hosts.container(PRIMARY)], check=True, capture_output=True)
    assert docker_exec(ha_hosts, "client-1", put.format("during")).stdout.strip() == "OK"

    refused = _run(ha_hosts, "deploys/failover.py", "--exclude", PRIMARY, check=False)
    assert refused.returncode != 0 and "ca_active" in refused.output

    started = time.monotonic()
    run = _run(
        ha_hosts, "deploys/failover.py", "--data", f"ca_active={BACKUP}", "--exclude", PRIMARY
    )
    took = time.monotonic() - started
    print(f"\nfailover: {took:.1f}s from start to working issuance")
    assert took < 60
    assert "issues and renews certificates" in run.output
    assert docker_exec(ha_hosts, BACKUP, "systemctl is-active step-ca").stdout.strip() == "active"
    # The proof's certificate and its renewal are revoked: it leaves no valid certificate.
    crl = docker_exec(ha_hosts, BACKUP, f"curl -sf --cacert {CA}/certs/root_ca.crt "
                      "https://127.0.0.1:9000/1.0/crl | openssl crl -inform DER -noout -text").stdout  # fmt: skip
    assert crl.count("Cessation Of Operation") >= 2, crl
    for host in ("etcd-k8s-2", "etcd-k8s-3", "client-1"):
        defaults = json.loads(
            docker_exec(ha_hosts, host, "cat /etc/step/config/defaults.json").stdout
        )
        assert defaults["ca-url"] == "https://etcd-k8s-2:9000"
        unit = docker_exec(ha_hosts, host, f"systemctl cat step-renew-{host}-client.service").stdout
        assert "--ca-url https://etcd-k8s-2:9000" in unit
    # A node renews through the promoted CA.
    renews_by_hand(ha_hosts, "etcd-k8s-3", "peer")
    again = _run(
        ha_hosts, "deploys/failover.py", "--data", f"ca_active={BACKUP}", "--exclude", PRIMARY
    )
    assert again.changes == {}
    # The inventory as the run said: the backup first. A new node gets its certificates.
    set_inventory(ha_hosts, ["etcd-k8s-2", "etcd-k8s-1", "etcd-k8s-3", "client-1", "client-2"])
    joined = _run(ha_hosts, "deploys/certs.py", "--limit", NEWCOMER.name)
    assert NEWCOMER.name in joined.changes
    crt = f"{SSL}/client-2-client.crt"
    verify = docker_exec(
        ha_hosts, NEWCOMER.name, f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}"
    )
    assert verify.stdout.strip().endswith("OK")
    assert docker_exec(ha_hosts, "client-1", put.format("after")).stdout.strip() == "OK"
    again = _run(
        ha_hosts, "deploys/failover.py", "--data", f"ca_active={BACKUP}", "--exclude", PRIMARY
    )
    assert again.changes == {}
