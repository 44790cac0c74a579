"""deploys/ca.py on bare hosts: step-ca initialised and healthy on the primary, installed and
stopped on the backup, idempotent, secrets kept off the output and off process arguments."""

from __future__ import annotations

import http.server
import ipaddress
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.artifacts import VERSIONS, other_release
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.processes import ProcessSampler
from tests.harness.pyinfra_run import PyinfraRun, run_pyinfra

pytestmark = pytest.mark.e2e

DEPLOY = "deploys/ca.py"
CA = "/etc/step-ca"
PRIMARY, BACKUP = "etcd-k8s-1", "etcd-k8s-2"
STEP = "step-ca | Install step"
RESTART = "step-ca | step-ca runs, restarted after a change, and starts at boot"


@pytest.fixture(scope="module")
def ca_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-ca", "172.28.64.0/24", release_archives)
    with scenario_hosts(scenario) as started:
        yield started


@pytest.fixture(scope="module")
def first_run(ca_hosts: Scenario) -> tuple[PyinfraRun, str]:
    """The first run from bare hosts, with every process's arguments sampled on the primary."""
    with ProcessSampler(ca_hosts, PRIMARY) as sampler:
        run = run_pyinfra(ca_hosts, DEPLOY)
    return run, sampler.text()


def _health(scenario: Scenario, host: str, root_pem: str) -> dict:
    """GET /health from the controller, TLS verified against the root and the host's name."""
    context = ssl.create_default_context(cadata=root_pem)
    address = scenario.host(host).address
    with (
        socket.create_connection((address, 9000), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def _modes(scenario: Scenario, host: str) -> dict[str, str]:
    """`{relative path: "mode user:group"}` of the CA's files."""
    out = docker_exec(scenario, host, f"find {CA} -maxdepth 2 -printf '%P %m %u:%g\\n'").stdout
    modes = {}
    for line in out.splitlines():
        path, mode, owner = line.rsplit(" ", 2)
        modes[path] = f"{mode} {owner}"
    return modes


def _unit(scenario: Scenario, host: str, prop: str) -> str:
    cmd = f"systemctl show step-ca.service -p {prop} --value"
    return docker_exec(scenario, host, cmd).stdout.strip()


def test_primary_runs_a_healthy_ca(ca_hosts: Scenario, first_run) -> None:
    assert _unit(ca_hosts, PRIMARY, "ActiveState") == "active"
    assert _unit(ca_hosts, PRIMARY, "UnitFileState") == "enabled"
    root = docker_exec(ca_hosts, PRIMARY, f"cat {CA}/certs/root_ca.crt").stdout
    assert _health(ca_hosts, PRIMARY, root) == {"status": "ok"}
    config = json.loads(docker_exec(ca_hosts, PRIMARY, f"cat {CA}/config/ca.json").stdout)
    assert (config["db"]["type"], config["db"]["dataSource"]) == ("bbolt", f"{CA}/db/bbolt.db")
    assert config["address"] == ":9000"
    # The CA's TLS certificate names every cert-manager, so a backup can take over.
    for name in ("etcd-k8s-1", "etcd-k8s-2", "172.28.64.11", "172.28.64.12"):
        assert name in config["dnsNames"]
    claims = config["authority"]["claims"]
    assert (claims["defaultTLSCertDuration"], claims["maxTLSCertDuration"]) == ("17520h", "26280h")
    assert claims["minTLSCertDuration"] == "1h"


def test_files_and_modes_match_the_reference(ca_hosts: Scenario, first_run) -> None:
    modes = _modes(ca_hosts, PRIMARY)
    for secret in ("root_ca_key", "intermediate_ca_key", "password", "provisioner_password"):
        assert modes[f"secrets/{secret}"] == "400 root:root", secret
    assert modes["secrets"] == "700 root:root"
    assert modes["certs/root_ca.crt"] == "644 root:root"
    assert modes["certs/intermediate_ca.crt"] == "644 root:root"
    assert modes["config/ca.json"] == "600 root:root"
    # The database alone is step-ca's own account's, with what step-ca writes in it.
    assert modes["db"] == "700 step:step"
    assert modes["db/bbolt.db"] == "600 step:step"
    for binary in ("step", "step-ca"):
        out = docker_exec(ca_hosts, PRIMARY, f"stat -c '%a %U' /opt/bin/{binary}").stdout
        assert out.split() == ["755", "root"]
    # Both certificates are 10-year CA certificates, the intermediate signed by the root.
    verify = f"openssl verify -CAfile {CA}/certs/root_ca.crt {CA}/certs/intermediate_ca.crt"
    assert docker_exec(ca_hosts, PRIMARY, verify).stdout.strip().endswith(": OK")
    for cert in ("root_ca", "intermediate_ca"):
        days = docker_exec(
            ca_hosts,
            PRIMARY,
            f"openssl x509 -in {CA}/certs/{cert}.crt -noout -checkend {86400 * 3640}"
            f" && openssl x509 -in {CA}/certs/{cert}.crt -noout -text | grep -c 'CA:TRUE'",
        )
        assert days.stdout.strip().endswith("1"), cert


def test_backup_has_step_ca_installed_stopped_and_disabled(ca_hosts: Scenario, first_run) -> None:
    assert _unit(ca_hosts, BACKUP, "ActiveState") == "inactive"
    assert _unit(ca_hosts, BACKUP, "UnitFileState") == "disabled"
    version = docker_exec(ca_hosts, BACKUP, "/opt/bin/step-ca version").stdout
    assert version.startswith(f"Smallstep CA/{VERSIONS['step-ca']} ")
    # Keys come to a backup only by replication; nothing is initialised there.
    assert docker_exec(ca_hosts, BACKUP, f"test -e {CA}/secrets", check=False).returncode != 0
    # Hosts that are no cert-manager get nothing from this deploy.
    assert docker_exec(ca_hosts, "etcd-k8s-3", "test -e /opt/bin/step-ca", check=False).returncode


def test_the_unit_is_hardened(ca_hosts: Scenario, first_run) -> None:
    out = docker_exec(ca_hosts, PRIMARY, "systemd-analyze security step-ca.service --no-pager")
    last = out.stdout.strip().splitlines()[-1]
    score = float(last.split(":")[1].split()[0])
    # Smallstep's reference unit scores 1.9 on these hosts; ours runs as its own account.
    assert score <= 1.2, last
    assert _unit(ca_hosts, PRIMARY, "User") == "step"
    assert _unit(ca_hosts, PRIMARY, "Restart") == "always"


def test_second_run_changes_nothing(ca_hosts: Scenario, first_run) -> None:
    pid = _unit(ca_hosts, PRIMARY, "MainPID")
    again = run_pyinfra(ca_hosts, DEPLOY)
    assert again.changes == {}
    assert _unit(ca_hosts, PRIMARY, "MainPID") == pid


def test_no_password_in_output_or_process_arguments(ca_hosts: Scenario, first_run) -> None:
    run, processes = first_run
    assert "step ca init" in processes  # the sampler did see the run
    for secret in ("password", "provisioner_password"):
        value = docker_exec(ca_hosts, PRIMARY, f"cat {CA}/secrets/{secret}").stdout.strip()
        assert len(value) >= 32
        assert value not in run.output
        assert value not in processes
        journal = docker_exec(ca_hosts, PRIMARY, "journalctl --no-pager -o cat").stdout
        assert value not in journal


def test_an_existing_ca_is_never_initialised_again(ca_hosts: Scenario, first_run) -> None:
    key_sum = docker_exec(ca_hosts, PRIMARY, f"sha256sum {CA}/secrets/root_ca_key").stdout
    docker_exec(ca_hosts, PRIMARY, f"mv {CA}/config/ca.json /root/ca.json.saved")
    try:
        refused = run_pyinfra(ca_hosts, DEPLOY, check=False)
        assert refused.returncode != 0
        assert "refusing to initialise a new CA over existing keys" in refused.output
        assert docker_exec(ca_hosts, PRIMARY, f"sha256sum {CA}/secrets/root_ca_key").stdout == (
            key_sum
        )
    finally:
        docker_exec(ca_hosts, PRIMARY, f"mv /root/ca.json.saved {CA}/config/ca.json")
    assert run_pyinfra(ca_hosts, DEPLOY).changes == {}


def test_changing_the_step_version_reinstalls_only_step(
    ca_hosts: Scenario, first_run, step_artifacts: Path, tmp_path: Path
) -> None:
    shutil.copy(step_artifacts / f"step-ca_linux_{VERSIONS['step-ca']}_amd64.tar.gz", tmp_path)
    version, digest = other_release("step", tmp_path)
    step_ca_sum = docker_exec(ca_hosts, PRIMARY, "sha256sum /opt/bin/step-ca").stdout
    pid = _unit(ca_hosts, PRIMARY, "MainPID")
    upgraded = run_pyinfra(
        ca_hosts,
        DEPLOY,
        "--data",
        f"artifact_dir={tmp_path}",
        "--data",
        f"step_version={version}",
        "--data",
        json.dumps({"amd64": digest}).join(["step_checksums=", ""]),
    )
    assert upgraded.changes == {PRIMARY: [STEP], BACKUP: [STEP]}
    for host in (PRIMARY, BACKUP):
        out = docker_exec(ca_hosts, host, "/opt/bin/step version").stdout
        assert out.startswith(f"Smallstep CLI/{version} ")
    assert docker_exec(ca_hosts, PRIMARY, "sha256sum /opt/bin/step-ca").stdout == step_ca_sum
    assert _unit(ca_hosts, PRIMARY, "MainPID") == pid
    # And back to the sandbox's version.
    assert run_pyinfra(ca_hosts, DEPLOY).changes == {PRIMARY: [STEP], BACKUP: [STEP]}  # fmt: skip


def test_a_step_ca_upgrade_restarts_the_ca_on_its_state(
    ca_hosts: Scenario, first_run, step_artifacts: Path, tmp_path: Path
) -> None:
    shutil.copy(step_artifacts / f"step_linux_{VERSIONS['step']}_amd64.tar.gz", tmp_path)
    version, digest = other_release("step-ca", tmp_path)
    state = f"sha256sum {CA}/certs/root_ca.crt {CA}/certs/intermediate_ca.crt {CA}/secrets/*"
    before = docker_exec(ca_hosts, PRIMARY, state).stdout
    pid = _unit(ca_hosts, PRIMARY, "MainPID")
    upgrade = [
        "--data", f"artifact_dir={tmp_path}", "--data", f"step_ca_version={version}",
        "--data", json.dumps({"amd64": digest}).join(["step_ca_checksums=", ""]),
    ]  # fmt: skip
    run = run_pyinfra(ca_hosts, DEPLOY, *upgrade)
    # Restarted, then waited for (when it does not answer at once): nothing issues before
    # the new step-ca answers.
    assert run.changes[PRIMARY][:2] == ["step-ca | Install step-ca", RESTART]
    assert run.changes[PRIMARY][2:] in ([], ["step-ca | step-ca is healthy"])
    assert run.changes[BACKUP] == ["step-ca | Install step-ca"]
    assert set(run.changes) == {PRIMARY, BACKUP}
    for host in (PRIMARY, BACKUP):
        out = docker_exec(ca_hosts, host, "/opt/bin/step-ca version").stdout
        assert out.startswith(f"Smallstep CA/{version} ")
    # The new binary serves the same CA: same keys, healthy, issuing; the backup stays off.
    assert _unit(ca_hosts, PRIMARY, "MainPID") != pid
    assert docker_exec(ca_hosts, PRIMARY, state).stdout == before
    root = docker_exec(ca_hosts, PRIMARY, f"cat {CA}/certs/root_ca.crt").stdout
    assert _health(ca_hosts, PRIMARY, root) == {"status": "ok"}
    assert _unit(ca_hosts, BACKUP, "ActiveState") == "inactive"
    assert run_pyinfra(ca_hosts, DEPLOY, *upgrade).changes == {}
    # And back to the sandbox's version.
    back = run_pyinfra(ca_hosts, DEPLOY)
    assert RESTART in back.changes[PRIMARY]
    assert _health(ca_hosts, PRIMARY, root) == {"status": "ok"}


@pytest.fixture
def mirror(ca_hosts: Scenario, step_artifacts: Path) -> Iterator[str]:
    """An HTTP server on the hosts' bridge gateway serving the release archives."""
    gateway = str(next(ipaddress.ip_network(ca_hosts.subnet).hosts()))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(step_artifacts))
    server = http.server.ThreadingHTTPServer((gateway, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{gateway}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_source_over_http(ca_hosts: Scenario, first_run, mirror: str) -> None:
    docker_exec(ca_hosts, BACKUP, "rm /opt/bin/step-ca")
    mirror_data = ["--data", "artifact_source=mirror", "--data", f"artifact_mirror_url={mirror}"]
    run = run_pyinfra(ca_hosts, DEPLOY, *mirror_data)
    assert run.changes == {BACKUP: ["step-ca | Install step-ca"]}
    version = docker_exec(ca_hosts, BACKUP, "/opt/bin/step-ca version").stdout
    assert version.startswith(f"Smallstep CA/{VERSIONS['step-ca']} ")
    assert run_pyinfra(ca_hosts, DEPLOY, *mirror_data).changes == {}


def test_a_wrong_checksum_fails_before_unpacking(
    ca_hosts: Scenario, first_run, step_artifacts: Path, tmp_path: Path
) -> None:
    version, _ = other_release("step", tmp_path)
    before = docker_exec(ca_hosts, BACKUP, "sha256sum /opt/bin/step").stdout
    bad = run_pyinfra(
        ca_hosts,
        DEPLOY,
        "--data",
        f"artifact_dir={tmp_path}",
        "--data",
        f"step_version={version}",
        "--data",
        'step_checksums={"amd64": "' + "0" * 64 + '"}',
        "--limit",
        BACKUP,
        check=False,
    )
    assert bad.returncode != 0
    assert bad.failed == {BACKUP: [STEP]}, bad.output[-3000:]
    assert f"checksum mismatch for step_linux_{version}_amd64.tar.gz" in bad.output
    assert docker_exec(ca_hosts, BACKUP, "sha256sum /opt/bin/step").stdout == before
    leftovers = docker_exec(
        ca_hosts, BACKUP, "ls -a /var/lib/etcd-step-pki/staging /opt/bin; stat -c %a"
        " /var/lib/etcd-step-pki/staging"
    ).stdout.split()  # fmt: skip
    assert leftovers[-1] == "700"
    assert not [name for name in leftovers if name.endswith(".tar.gz")]
    assert "step.new" not in leftovers
