"""The root key offline (`ca_root_key_offline`): after the first run no cert-manager's disk
holds it, the controller keeps it encrypted to the operator's key, a rotation brings it back
for its step alone (and is refused without the private key), and a backup restores without
it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.conftest import fresh_scenario
from tests.harness.hosts import ROOT_KEY_FILE, Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import PyinfraRun, run_pyinfra
from tests.harness.s3 import CREDENTIALS, GpgKey, backup_data, restore_data

pytestmark = pytest.mark.e2e

CA = "/etc/step-ca"
MANAGERS = ("etcd-k8s-1", "etcd-k8s-2")
KEYS_ON_DISK = "find /etc /root /var /run -name 'root_ca_key*' 2>/dev/null"


def _run(scenario: Scenario, keys: dict[str, GpgKey], *args: str, check: bool = True) -> PyinfraRun:
    offline = ["--data", "ca_root_key_offline=true",
               "--data", f"ca_backup_recipient_key={keys['backup'].public}"]  # fmt: skip
    return run_pyinfra(scenario, *args, *offline, env=CREDENTIALS, check=check)


@pytest.fixture(scope="module")
def offline_hosts(release_archives: Path, keys: dict[str, GpgKey]) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-rootkey", "172.28.84.0/24", release_archives, clients=0)
    with scenario_hosts(scenario) as started:
        _run(started, keys, "deploys/cluster.py")
        yield started


def _root(scenario: Scenario) -> x509.Certificate:
    pem = docker_exec(scenario, MANAGERS[0], f"cat {CA}/certs/root_ca.crt").stdout
    return x509.load_pem_x509_certificate(pem.encode())


def _intermediate(scenario: Scenario) -> str:
    return docker_exec(scenario, MANAGERS[0], f"cat {CA}/certs/intermediate_ca.crt").stdout


def test_no_cert_manager_keeps_the_root_key(offline_hosts: Scenario, keys) -> None:
    for host in MANAGERS:
        assert docker_exec(offline_hosts, host, KEYS_ON_DISK).stdout == "", host
        assert docker_exec(offline_hosts, host, f"test -s {CA}/secrets/intermediate_ca_key")
    export = offline_hosts.state_dir / ROOT_KEY_FILE
    header, message = export.read_text().split("\n", 1)
    root = _root(offline_hosts)
    fingerprint = docker_exec(offline_hosts, MANAGERS[0], f"openssl x509 -in {CA}/certs/root_ca.crt"
                              " -outform DER | sha256sum | cut -c1-64").stdout.strip()  # fmt: skip
    assert header == f"# root {fingerprint}"
    assert oct(export.stat().st_mode & 0o777) == "0o600"
    # Only the operator's key decrypts it, into the root's key (the CA password encrypts it).
    assert keys["other"].decrypt(message.encode()).returncode != 0
    plain = keys["backup"].decrypt(message.encode())
    assert plain.returncode == 0 and b"ENCRYPTED" in plain.stdout
    password = docker_exec(offline_hosts, MANAGERS[0], f"cat {CA}/secrets/password").stdout
    key = load_pem_private_key(plain.stdout, password.strip().encode())
    assert key.public_key() == root.public_key()
    # step-ca issues with the intermediate alone.
    health = docker_exec(offline_hosts, MANAGERS[0], f"curl -sS --cacert {CA}/certs/root_ca.crt"
                         " https://etcd-k8s-1:9000/health").stdout  # fmt: skip
    assert json.loads(health) == {"status": "ok"}


def test_a_second_run_changes_nothing(offline_hosts: Scenario, keys) -> None:
    assert _run(offline_hosts, keys, "deploys/cluster.py").changes == {}


def test_a_rotation_needs_the_private_key_and_leaves_no_root_key(offline_hosts, keys) -> None:
    now = ["--data", f"rotate_before={dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"]
    before = _intermediate(offline_hosts)
    refused = _run(offline_hosts, keys, "deploys/rotate_intermediate.py", *now, check=False)
    assert refused.returncode != 0 and "ca_restore_private_key" in refused.output
    assert refused.changes == {} and _intermediate(offline_hosts) == before
    private = ["--data", f"ca_restore_private_key={keys['backup'].private}"]
    rotated = _run(offline_hosts, keys, "deploys/rotate_intermediate.py", *now, *private)
    assert MANAGERS[0] in rotated.changes
    after = _intermediate(offline_hosts)
    assert after != before
    verify = docker_exec(offline_hosts, MANAGERS[0],
                         f"openssl verify -CAfile {CA}/certs/root_ca.crt {CA}/certs/intermediate_ca.crt")  # fmt: skip
    assert verify.stdout.strip().endswith(": OK")
    # Neither the private key nor the decrypted root key stayed, nor showed in the output.
    for host in MANAGERS:
        assert docker_exec(offline_hosts, host, KEYS_ON_DISK).stdout == "", host
        left = docker_exec(offline_hosts, host, "ls -d /run/etcd-step-pki-rotate.* 2>/dev/null",
                           check=False).stdout  # fmt: skip
        assert left == "", host
    body = [line for line in keys["backup"].private.read_text().splitlines()
            if len(line) > 40 and not line.startswith("-----")]  # fmt: skip
    assert body and not any(line in rotated.output for line in body)
    again = _run(offline_hosts, keys, "deploys/rotate_intermediate.py", *now, *private)
    assert again.changes == {}


def test_a_backup_restores_without_the_root_key(offline_hosts, s3, keys) -> None:
    _run(offline_hosts, keys, "deploys/backup_ca.py", *backup_data(s3, keys))
    root = _root(offline_hosts)
    docker_exec(offline_hosts, MANAGERS[0], f"systemctl stop step-ca && rm -rf {CA}")
    _run(offline_hosts, keys, "deploys/restore_ca.py", *restore_data(s3, keys))
    assert _root(offline_hosts) == root
    assert docker_exec(offline_hosts, MANAGERS[0], KEYS_ON_DISK).stdout == ""
    health = docker_exec(offline_hosts, MANAGERS[0], f"curl -sS --cacert {CA}/certs/root_ca.crt"
                         " https://etcd-k8s-1:9000/health").stdout  # fmt: skip
    assert json.loads(health) == {"status": "ok"}
    # The next run replicates the restored state, without the root key, and converges.
    _run(offline_hosts, keys, "deploys/cluster.py")
    assert docker_exec(offline_hosts, MANAGERS[1], KEYS_ON_DISK).stdout == ""
    assert _run(offline_hosts, keys, "deploys/cluster.py").changes == {}
