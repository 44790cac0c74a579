"""ca_ha=active-active: step-ca on both cert-managers over a MariaDB Galera cluster of the
two and an arbitrator, replicating over TLS with certificates of the CA itself."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from etcd_step_pki.facts.bolt import BoltFile
from tests.conftest import fresh_scenario
from tests.harness.hosts import (
    Scenario,
    docker_exec,
    host_network,
    scenario_hosts,
    wait_ready,
)
from tests.harness.pyinfra_run import run_pyinfra

pytestmark = pytest.mark.e2e

SUBNET = "172.28.84.0/24"
NODES = ("etcd-k8s-1", "etcd-k8s-2")
ARBITRATOR = "etcd-k8s-3"
GALERA = "/etc/etcd-pki/galera"
CA = "/etc/step-ca"
TEXTFILES = "/var/lib/prometheus/node-exporter"


@pytest.fixture(scope="module")
def active(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-aa", SUBNET, release_archives)
    scenario.extra.update(metrics_textfile_dir=TEXTFILES)
    with scenario_hosts(scenario) as started:
        # A CA of the standby layout, with records in its bbolt file, becomes active-active.
        run_pyinfra(started, "deploys/cluster.py")
        state_file = started.state_dir / "hosts.json"
        state = json.loads(state_file.read_text())
        state.update(ca_ha="active-active", ca_galera_arbitrator=ARBITRATOR)
        state_file.write_text(json.dumps(state))
        run_pyinfra(started, "deploys/cluster.py")
        yield started


def _sql(scenario: Scenario, host: str, query: str) -> str:
    return docker_exec(scenario, host, f'mariadb -N -B -e "{query}"').stdout.strip()


def _status(scenario: Scenario, host: str, name: str) -> str:
    return _sql(scenario, host, f"SHOW GLOBAL STATUS LIKE '{name}'").split("\t")[-1]


def test_the_standby_cas_records_moved_to_the_database_every_one(active: Scenario) -> None:
    """The bbolt file step-ca ran on before stays as it was; every record of it is in the
    Galera database, on both nodes."""
    data = docker_exec(active, NODES[0], f"base64 -w0 {CA}/db/bbolt.db").stdout
    bolt = BoltFile(base64.b64decode(data))
    moved = 0
    for bucket in bolt.buckets():
        keys = [key for key, _ in bolt.items(bucket)]
        if not keys:
            continue
        listed = ", ".join(f"0x{key.hex()}" for key in keys)
        query = f"SELECT COUNT(*) FROM step_ca.{bucket.decode()} WHERE nkey IN ({listed})"
        for name in NODES:
            assert _sql(active, name, query) == str(len(keys)), (bucket, name)
        moved += len(keys)
    assert moved >= 20  # the members' and client's certificates, their tokens, the CRL


def test_every_cert_manager_is_a_synced_node_of_three_voters(active: Scenario) -> None:
    for name in NODES:
        assert _status(active, name, "wsrep_cluster_status") == "Primary"
        assert _status(active, name, "wsrep_local_state_comment") == "Synced"
        assert _status(active, name, "wsrep_cluster_size") == "3"
    unit = "etcd-pki-garbd.service"
    assert docker_exec(active, ARBITRATOR, f"systemctl is-active {unit}").stdout.strip() == "active"
    user = docker_exec(active, ARBITRATOR, f"systemctl show -p User --value {unit}").stdout
    assert user.strip() == "garbd"


def test_replication_runs_over_tls_with_the_cas_certificates(active: Scenario) -> None:
    intermediate = x509.load_pem_x509_certificate(
        docker_exec(active, NODES[0], f"cat {CA}/certs/intermediate_ca.crt").stdout.encode()
    )
    for name, owner in zip((*NODES, ARBITRATOR), ("mysql", "mysql", "garbd"), strict=True):
        options = _sql(active, name, "SELECT @@wsrep_provider_options") if owner == "mysql" else ""
        if owner == "mysql":
            assert f"socket.ssl_cert = {GALERA}/galera.crt" in options
            assert "socket.ssl = YES" in options
        pem = docker_exec(active, name, f"cat {GALERA}/galera.crt").stdout.encode()
        cert = x509.load_pem_x509_certificate(pem)
        assert cert.issuer == intermediate.subject
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in sans.get_values_for_type(x509.DNSName)
        key = docker_exec(active, name, f"stat -L -c '%U %a' {GALERA}/galera.key").stdout
        assert key.split() == [owner, "400"]
        timer = f"step-renew-{name}-galera.timer"
        assert (
            docker_exec(active, name, f"systemctl is-enabled {timer}").stdout.strip() == "enabled"
        )


def test_step_ca_serves_on_both_from_the_shared_database(active: Scenario) -> None:
    for name in NODES:
        assert docker_exec(active, name, "systemctl is-active step-ca").stdout.strip() == "active"
        config = docker_exec(active, name, f"cat {CA}/config/ca.json").stdout
        assert '"type": "mysql"' in config and "step@unix(/run/mysqld/mysqld.sock)/" in config
        health = docker_exec(
            active,
            "client-1",
            f"curl -sS --cacert /etc/etcd/ssl/root_ca.crt --resolve {name}:9000:"
            f"$(getent hosts {name} | cut -d' ' -f1) https://{name}:9000/health",
        ).stdout
        assert '"ok"' in health
    counts = {name: _sql(active, name, "SELECT COUNT(*) FROM step_ca.x509_certs") for name in NODES}
    # Every node holds every certificate the CA issued: members', clients', Galera's.
    assert counts[NODES[0]] == counts[NODES[1]] and int(counts[NODES[0]]) >= 10
    grants = _sql(active, NODES[1], "SHOW GRANTS FOR 'step'@'localhost'")
    assert "unix_socket" in grants
    assert (
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON `step_ca`.* TO `step`@`localhost`"
        in grants
    )
    # Nothing on every database but the right to connect (USAGE).
    assert [line for line in grants.splitlines() if "ON *.*" in line] == [
        "GRANT USAGE ON *.* TO `step`@`localhost` IDENTIFIED VIA unix_socket"
    ]


def test_a_token_used_at_one_ca_is_refused_at_the_other(active: Scenario) -> None:
    mint = (
        f"STEPPATH={CA} /opt/bin/step ca token drill-proof --provisioner etcd-pki "
        f"--password-file {CA}/secrets/provisioner_password --ca-url https://{NODES[0]}:9000 "
        f"--root {CA}/certs/root_ca.crt --not-after 5m"
    )
    token = docker_exec(active, NODES[0], mint).stdout.strip()
    ask = (
        "cd $(mktemp -d) && STEPPATH=$PWD /opt/bin/step ca certificate drill-proof a.crt a.key "
        '--token "$(cat)" --ca-url https://{}:9000 --root /etc/etcd/ssl/root_ca.crt'
    )
    first = docker_exec(active, "client-1", ask.format(NODES[1]), input=token, check=False)
    assert first.returncode == 0, first.stderr
    again = docker_exec(active, "client-1", ask.format(NODES[0]), input=token, check=False)
    assert again.returncode != 0
    # The client is told it lacks authorization; the CA says why.
    log = docker_exec(active, NODES[0], "journalctl -u step-ca --no-pager").stdout
    assert "token already used" in log


def test_a_second_run_changes_nothing(active: Scenario) -> None:
    assert run_pyinfra(active, "deploys/cluster.py").changes == {}


def test_renewals_and_revocation_lists_reach_either_ca(active: Scenario) -> None:
    urls = " ".join(f"https://{name}:9000" for name in NODES)
    unit = docker_exec(active, "client-1", "systemctl cat step-renew-client-1-client.service")
    assert f"ExecStart=/opt/bin/etcd-pki-first-ca {urls} -- /opt/bin/step ca renew" in unit.stdout
    assert "--ca-url @CA@" in unit.stdout
    crl = docker_exec(active, ARBITRATOR, "systemctl cat etcd-pki-crl.service").stdout
    assert f"/opt/bin/etcd-pki-first-ca {urls} -- /usr/bin/curl" in crl and "@CA@/1.0/crl" in crl


def _serial(scenario: Scenario, host: str, crt: str) -> str:
    pem = docker_exec(scenario, host, f"cat {crt}").stdout.encode()
    return str(x509.load_pem_x509_certificate(pem).serial_number)


def _until(what: str, check: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(2)


def _textfile(scenario: Scenario, host: str, name: str) -> dict[str, str]:
    text = docker_exec(scenario, host, f"cat {TEXTFILES}/{name}").stdout
    return {
        line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_every_node_and_every_ca_is_watched(active: Scenario) -> None:
    """Each node's place in the cluster, read by its timer as MariaDB's account; every host
    probes both CAs."""
    for name in NODES:
        found = _until_found(active, name, "etcd_pki_galera.prom")
        labels = f'{{host="{name}"}}'
        assert found[f"etcd_pki_galera_primary{labels}"] == "1"
        assert found[f"etcd_pki_galera_synced{labels}"] == "1"
        assert found[f"etcd_pki_galera_cluster_size{labels}"] == "3"
        assert found[f"etcd_pki_galera_voters{labels}"] == "3"
        owner = docker_exec(active, name, f"stat -c %U {TEXTFILES}/etcd_pki_galera.prom").stdout
        assert owner.strip() == "root"
    # Probes run every ca_probe_interval: one may still say what it found while step-ca was
    # stopped for the move of its records.
    keys = [f'etcd_pki_ca_probe_up{{host="client-1",ca="https://{name}:9000"}}' for name in NODES]
    _until(
        "client-1's probe reaching both CAs",
        lambda: (
            [_until_found(active, "client-1", "etcd_pki_ca_probe.prom").get(k) for k in keys]
            == ["1", "1"]
        ),
        90,
    )


def _until_found(scenario: Scenario, host: str, name: str) -> dict[str, str]:
    found: dict[str, str] = {}

    def present() -> bool:
        nonlocal found
        check = docker_exec(scenario, host, f"test -s {TEXTFILES}/{name}", check=False)
        found = _textfile(scenario, host, name) if check.returncode == 0 else {}
        return bool(found)

    _until(f"{name} on {host}", present, 60)
    return found


def _renewed_now(scenario: Scenario, host: str, unit: str) -> None:
    """The renewal unit started once with its renewal-due condition lifted."""
    drop = f"/run/systemd/system/{unit}.d"
    docker_exec(
        scenario,
        host,
        f"mkdir -p {drop} && printf '[Service]\\nExecCondition=\\n' > {drop}/now.conf && "
        f"systemctl daemon-reload && systemctl start {unit}; status=$?; rm -rf {drop}; "
        "systemctl daemon-reload; exit $status",
    )


def test_a_renewed_replication_certificate_is_read_again_without_a_restart(
    active: Scenario,
) -> None:
    name = NODES[1]
    crt = f"{GALERA}/galera.crt"
    before = _serial(active, name, crt)
    pid = docker_exec(active, name, "systemctl show -p MainPID --value mariadb").stdout
    _renewed_now(active, name, f"step-renew-{name}-galera.service")
    assert _serial(active, name, crt) != before
    assert docker_exec(active, name, "systemctl show -p MainPID --value mariadb").stdout == pid
    # The arbitrator's is renewed too, and it is back in the cluster after its restart.
    arbitrated = _serial(active, ARBITRATOR, crt)
    _renewed_now(active, ARBITRATOR, f"step-renew-{ARBITRATOR}-galera.service")
    assert _serial(active, ARBITRATOR, crt) != arbitrated
    _until("the arbitrator back", lambda: _status(active, name, "wsrep_cluster_size") == "3", 60)
    assert _status(active, name, "wsrep_local_state_comment") == "Synced"


def test_a_node_cut_off_stops_writing_and_catches_up_when_the_cut_heals(
    active: Scenario,
) -> None:
    """The second cert-manager cut off from the first and the arbitrator: it leaves the
    primary component and its CA issues nothing, while the majority's CA issues; healed, it
    holds what the majority recorded and nothing diverged."""
    cut, kept = NODES[1], NODES[0]
    others = [active.host(name).address for name in (kept, ARBITRATOR)]
    for address in others:
        host_network(active, cut, "ip", "route", "add", "blackhole", f"{address}/32")
    try:
        _until(
            f"{cut} out of the primary component",
            lambda: _status(active, cut, "wsrep_cluster_status") != "Primary",
            90,
        )
        assert _status(active, kept, "wsrep_cluster_status") == "Primary"
        assert _status(active, kept, "wsrep_cluster_size") == "2"
        refused = _issue(active, cut, "drill-proof")
        assert refused.returncode != 0
        issued = _issue(active, kept, "drill-proof")
        assert issued.returncode == 0, issued.stderr
        serial = issued.stdout.strip()
    finally:
        for address in others:
            host_network(active, cut, "ip", "route", "del", "blackhole", f"{address}/32")
    _until(
        f"{cut} synced again",
        lambda: _status(active, cut, "wsrep_local_state_comment") == "Synced",
        120,
    )
    assert _status(active, cut, "wsrep_cluster_size") == "3"
    query = f"SELECT COUNT(*) FROM step_ca.x509_certs WHERE nkey='{serial}'"
    assert _sql(active, cut, query) == "1"
    total = "SELECT COUNT(*), SUM(CRC32(nvalue)) FROM step_ca.x509_certs"
    assert _sql(active, cut, total) == _sql(active, kept, total)


def _issue(scenario: Scenario, ca_host: str, subject: str) -> subprocess.CompletedProcess[str]:
    """A certificate for `subject` asked of the CA on `ca_host` with a token minted there;
    its serial (decimal) on stdout."""
    mint = (
        f"STEPPATH={CA} /opt/bin/step ca token {subject} --provisioner etcd-pki "
        f"--password-file {CA}/secrets/provisioner_password --ca-url https://{ca_host}:9000 "
        f"--root {CA}/certs/root_ca.crt --not-after 5m"
    )
    token = docker_exec(scenario, ca_host, mint).stdout.strip()
    ask = (
        f"cd $(mktemp -d) && STEPPATH=$PWD timeout 60 /opt/bin/step ca certificate {subject} "
        f'a.crt a.key --token "$(cat)" --ca-url https://{ca_host}:9000 '
        "--root /etc/etcd/ssl/root_ca.crt >/dev/null && "
        "openssl x509 -in a.crt -noout -serial | cut -d= -f2"
    )
    out = docker_exec(scenario, "client-1", ask, input=token, check=False)
    if out.returncode == 0:
        out.stdout = str(int(out.stdout.strip(), 16))
    return out


def test_revocation_reads_the_shared_records_and_every_ca_lists_it(active: Scenario) -> None:
    """A compromised client: what it holds comes from the records in the Galera database;
    revoked at one CA, the certificates are listed by the other's CRL too."""
    client = "/etc/etcd/ssl/client-1-client.crt"
    old = int(_serial(active, "client-1", client))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run_pyinfra(active, "deploys/revoke.py", "--data", "revoke_host=client-1",
                "--data", f"revoke_before={now}")  # fmt: skip
    assert int(_serial(active, "client-1", client)) != old
    for name in NODES:
        der = docker_exec(
            active,
            "client-1",
            f"curl -sf --cacert /etc/etcd/ssl/root_ca.crt https://{name}:9000/1.0/crl | base64 -w0",
        ).stdout
        crl = x509.load_der_x509_crl(base64.b64decode(der))
        assert crl.get_revoked_certificate_by_serial_number(old) is not None, name
        found = _sql(
            active, name, f"SELECT COUNT(*) FROM step_ca.revoked_x509_certs WHERE nkey='{old}'"
        )
        assert found == "1"


def test_a_dead_cert_manager_stops_neither_renewal_nor_issuance(active: Scenario) -> None:
    """The first cert-manager (the primary of the standby layout) stopped whole: a renewal
    and a new certificate go through the other CA with no change of settings; back, the
    host catches up on its own and holds every record issued while it was away."""
    client = "/etc/etcd/ssl/client-1-client.crt"
    before = _serial(active, "client-1", client)
    subprocess.run(["docker", "stop", active.container(NODES[0])], check=True, capture_output=True)
    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        run_pyinfra(active, "deploys/renew.py", "--limit", "client-1", "--data",
                    f"renew_before={now}", "--data", "renew_kinds=client")  # fmt: skip
        renewed = _serial(active, "client-1", client)
        assert renewed != before
        # A new certificate: tokens minted on the cert-manager that answers.
        docker_exec(active, ARBITRATOR, "rm -f /etc/etcd/ssl/etcd-k8s-3-client.crt")
        run_pyinfra(active, "deploys/certs.py", "--limit", ARBITRATOR)
        issued = _serial(active, ARBITRATOR, "/etc/etcd/ssl/etcd-k8s-3-client.crt")
    finally:
        subprocess.run(["docker", "start", active.container(NODES[0])], check=True,
                       capture_output=True)  # fmt: skip
    _until(
        "the first cert-manager back in the cluster",
        lambda: docker_exec(active, NODES[0], "mariadb -N -B -e \"SHOW GLOBAL STATUS LIKE "
                            "'wsrep_local_state_comment'\"", check=False).stdout.split()[-1:]
        == ["Synced"],
    )  # fmt: skip
    for serial in (renewed, issued):
        for name in NODES:
            found = _sql(
                active, name, f"SELECT COUNT(*) FROM step_ca.x509_certs WHERE nkey='{serial}'"
            )
            assert found == "1", (name, serial)
    assert _status(active, NODES[1], "wsrep_cluster_size") == "3"
    _until(
        "step-ca back on the first cert-manager",
        lambda: (
            docker_exec(active, NODES[0], "systemctl is-active step-ca", check=False).stdout.strip()
            == "active"
        ),
    )
    assert run_pyinfra(active, "deploys/cluster.py").changes == {}


def test_a_crash_of_every_node_is_started_again_by_a_deploy(active: Scenario) -> None:
    """Every host of the Galera cluster killed at once (no clean stop: no node is marked
    safe to start from): cluster.py starts the cluster again from the node with the highest
    position, the others join, step-ca serves on both, and no record is lost."""
    total = "SELECT COUNT(*), SUM(CRC32(nvalue)) FROM step_ca.x509_certs"
    before = _sql(active, NODES[0], total)
    hosts = (*NODES, ARBITRATOR)
    for name in hosts:
        subprocess.run(["docker", "kill", active.container(name)], check=True, capture_output=True)
    for name in hosts:
        subprocess.run(["docker", "start", active.container(name)], check=True,
                       capture_output=True)  # fmt: skip
    # MariaDB waits at boot for a primary component no node has: sshd is enough.
    wait_ready(active, booted=False)
    run_pyinfra(active, "deploys/cluster.py")
    for name in NODES:
        assert _status(active, name, "wsrep_cluster_status") == "Primary"
        assert _status(active, name, "wsrep_cluster_size") == "3"
        assert _sql(active, name, total) == before
        _until(
            f"step-ca on {name}",
            lambda name=name: (
                docker_exec(active, name, "systemctl is-active step-ca", check=False).stdout.strip()
                == "active"
            ),
        )
