"""deploys/cluster.py from bare hosts: a healthy 3-member etcd cluster over mTLS, idempotent;
members added with --limit and removed; snapshots saved and restored; bad input refused."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness import artifacts
from tests.harness.artifacts import VERSIONS
from tests.harness.checks import (
    cluster_healthy,
    etcd_versions,
    etcdctl,
    members,
    wait_for_cluster_version,
)
from tests.harness.hosts import (
    Scenario,
    TestHost,
    docker_exec,
    scenario_hosts,
    set_inventory,
    wait_ready,
)
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.s3 import GpgKey
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

SSL = "/etc/etcd/ssl"
SUBNET = "172.28.66.0/24"
REPLICATE = "Replicate the CA | CA state from etcd-k8s-1"
FOURTH = TestHost("etcd-k8s-4", "172.28.66.14", ("etcd",))


@pytest.fixture(scope="module")
def cluster_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-cluster", SUBNET, release_archives)
    scenario.hosts.append(FOURTH)
    with scenario_hosts(scenario) as started:
        set_inventory(started, ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"])
        yield started


@pytest.fixture(scope="module")
def created(cluster_hosts: Scenario) -> float:
    """One run of deploys/cluster.py from bare hosts; returns its wall time."""
    start = time.monotonic()
    run_pyinfra(cluster_hosts, "deploys/cluster.py")
    return time.monotonic() - start


def test_one_run_gives_a_healthy_three_member_cluster(cluster_hosts: Scenario, created) -> None:
    assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"}
    assert cluster_healthy(cluster_hosts)
    for host in ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"):
        unit = f"etcd-{host.removeprefix('etcd-')}.service"
        state = docker_exec(
            cluster_hosts, host, f"systemctl is-active {unit}; systemctl is-enabled {unit}"
        )
        assert state.stdout.split() == ["active", "enabled"]
        user = docker_exec(cluster_hosts, host, "ps -o user= -C etcd").stdout.strip()
        assert user == "etcd"
        config = docker_exec(cluster_hosts, host, f"cat /etc/etcd/{host}.env").stdout
        lines = config.splitlines()
        assert "ETCD_CLIENT_CERT_AUTH=true" in lines and "ETCD_INITIAL_CLUSTER_STATE=new" in lines
        assert f"ETCD_TRUSTED_CA_FILE={SSL}/client-ca.crt" in lines
        assert "ETCD_TLS_MIN_VERSION=TLS1.2" in lines
        assert f"ETCD_CLIENT_CRL_FILE={SSL}/ca.crl" in lines


def test_a_client_reads_and_writes_over_mtls(cluster_hosts: Scenario, created) -> None:
    endpoints = ",".join(f"https://etcd-k8s-{i}:2379" for i in (1, 2, 3))
    put = docker_exec(
        cluster_hosts,
        "client-1",
        etcdctl("client-1", "put /pki/greeting hello", endpoints=endpoints),
    )
    assert put.stdout.strip() == "OK"
    got = docker_exec(
        cluster_hosts, "client-1",
        etcdctl("client-1", "get /pki/greeting --print-value-only", endpoints=endpoints),
    )  # fmt: skip
    assert got.stdout.strip() == "hello"


def test_a_connection_without_client_certificate_is_refused(
    cluster_hosts: Scenario, created
) -> None:
    refused = docker_exec(
        cluster_hosts,
        "client-1",
        f"/opt/bin/etcdctl --endpoints=https://etcd-k8s-1:2379 --cacert={SSL}/root_ca.crt "
        "--dial-timeout=3s --command-timeout=5s get /pki/greeting",
        check=False,
    )
    assert refused.returncode != 0
    curl = docker_exec(
        cluster_hosts, "client-1",
        f"curl -sS --cacert {SSL}/root_ca.crt https://etcd-k8s-1:2379/version", check=False,
    )  # fmt: skip
    assert curl.returncode != 0


def _peer_port(scenario: Scenario, host: str, cert: str) -> str:
    """The HTTP status etcd-k8s-1's peer port answers `host` with `cert` (<name>.crt/.key);
    000 when the TLS handshake is refused."""
    return docker_exec(
        scenario, host,
        f"curl -s --http1.1 -o /dev/null -w '%{{http_code}}' --max-time 5 --cacert {SSL}/root_ca.crt"
        f" --cert {SSL}/{cert}.crt --key {SSL}/{cert}.key https://etcd-k8s-1:2380/members",
        check=False,
    ).stdout.strip()  # fmt: skip


def _usages(scenario: Scenario, host: str, cert: str) -> tuple[str, str]:
    """The certificate's subject and extended key usages, as openssl prints them."""
    out = docker_exec(scenario, host, f"openssl x509 -in {SSL}/{cert}.crt -noout -subject"
                      " -nameopt multiline -ext extendedKeyUsage").stdout  # fmt: skip
    lines = [line.strip() for line in out.splitlines()]
    name = next(line.split("=", 1)[1].strip() for line in lines if line.startswith("commonName"))
    return name, lines[-1]


def test_the_peer_port_accepts_this_clusters_peers_only(cluster_hosts: Scenario, created) -> None:
    """A client's certificate, or a member's server certificate, of the same CA is refused
    on the peer port (each has clientAuth and chains to the peer trust: only its common name
    differs); a peer certificate is accepted. Each kind has only its usages."""
    assert _peer_port(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2-peer") == "200"
    assert _peer_port(cluster_hosts, "client-1", "client-1-client") == "000"
    assert _peer_port(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2-server") == "000"
    assert _peer_port(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2-client") == "000"
    # etcd itself refused them, in the TLS handshake.
    log = docker_exec(cluster_hosts, "etcd-k8s-1", "journalctl -u etcd-k8s-1.service --no-pager"
                      " -o cat | grep 'rejected connection on peer endpoint'").stdout  # fmt: skip
    assert '"dns-names":["client-1",' in log
    both = "TLS Web Server Authentication, TLS Web Client Authentication"
    assert _usages(cluster_hosts, "client-1", "client-1-client") == (
        "client-1",
        "TLS Web Client Authentication",
    )
    assert _usages(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2-peer") == ("etcd-k8s-peer", both)
    assert _usages(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2-server") == ("etcd-k8s-2", both)


def test_second_run_changes_nothing(cluster_hosts: Scenario, created) -> None:
    pids = {
        h: docker_exec(cluster_hosts, h, "pidof etcd").stdout for h in ("etcd-k8s-1", "etcd-k8s-2")
    }
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}
    assert {h: docker_exec(cluster_hosts, h, "pidof etcd").stdout for h in pids} == pids


def _status(scenario: Scenario) -> tuple[int, dict]:
    run = run_pyinfra(scenario, "deploys/status.py", "--data", "status_format=json", check=False)
    documents = [json.loads(x) for x in run.stdout.splitlines() if x.startswith('{"generated"')]
    assert len(documents) == 1, run.output[-3000:]
    return run.returncode, documents[0]


def test_status_reports_health_and_fails_on_problems(cluster_hosts: Scenario, created) -> None:
    code, report = _status(cluster_hosts)
    assert code == 0 and report["ok"] is True and report["attention"] == []
    hosts = {h["host"]: h for h in report["hosts"]}
    assert set(hosts) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"}
    assert hosts["etcd-k8s-1"]["ca"]["healthy"] is True
    assert hosts["etcd-k8s-1"]["ca"]["root_days_left"] > 3600
    assert hosts["etcd-k8s-2"]["etcd"]["healthy"] is True
    assert sorted(hosts["etcd-k8s-2"]["etcd"]["members"]) == [
        "etcd-k8s-1",
        "etcd-k8s-2",
        "etcd-k8s-3",
    ]
    rows = hosts["etcd-k8s-3"]["certificates"]
    assert {r["kind"] for r in rows} == {"peer", "server", "client"}
    assert all(r["present"] and not r["renewal_due"] and r["timer"] == "active" for r in rows)
    assert rows[0]["days_left"] > 729

    docker_exec(cluster_hosts, "etcd-k8s-1", "systemctl stop step-ca")
    docker_exec(cluster_hosts, "client-1", "systemctl stop step-renew-client-1-client.timer")
    try:
        code, report = _status(cluster_hosts)
        assert code != 0 and report["ok"] is False
        assert any("step-ca is unhealthy" in item for item in report["attention"])
        assert "client-1 client certificate: the renewal timer is inactive" in report["attention"]
    finally:
        docker_exec(cluster_hosts, "etcd-k8s-1", "systemctl start step-ca")
    fixed = run_pyinfra(cluster_hosts, "deploys/cluster.py").changes
    assert fixed.pop("client-1") == ["Node certificates | Renewal units"]
    # step-ca writes to its database when it starts: the backup gets the new state.
    assert fixed in ({}, {"etcd-k8s-2": [REPLICATE]})
    code, report = _status(cluster_hosts)
    assert code == 0, report["attention"]


def _served_serial(scenario: Scenario, host: str, address: str) -> str:
    out = docker_exec(
        scenario,
        host,
        f"echo | openssl s_client -connect {address}:2379 -cert {SSL}/{host}-client.crt "
        f"-key {SSL}/{host}-client.key -CAfile {SSL}/root_ca.crt 2>/dev/null "
        "| openssl x509 -noout -serial",
    )
    return out.stdout.strip()


def test_renewed_certificate_is_served_without_restart(cluster_hosts: Scenario, created) -> None:
    member = "etcd-k8s-2"
    address = cluster_hosts.host(member).address
    pid = docker_exec(cluster_hosts, member, "pidof etcd").stdout
    before = _served_serial(cluster_hosts, "etcd-k8s-1", address)
    docker_exec(
        cluster_hosts,
        member,
        f"STEPPATH=/etc/step /opt/bin/step ca renew --force {SSL}/{member}-server.crt "
        f"{SSL}/{member}-server.key >/dev/null 2>&1",
    )
    on_disk = docker_exec(
        cluster_hosts, member, f"openssl x509 -in {SSL}/{member}-server.crt -noout -serial"
    ).stdout.strip()
    assert on_disk != before
    assert _served_serial(cluster_hosts, "etcd-k8s-1", address) == on_disk
    assert docker_exec(cluster_hosts, member, "pidof etcd").stdout == pid
    assert cluster_healthy(cluster_hosts)


def _start_spans(scenario: Scenario, hosts: tuple[str, ...]) -> list[tuple[int, ...]]:
    """(started, running) monotonic times of each host's etcd unit, in the order they began."""
    show = "systemctl show etcd-{n}.service -p {p}TimestampMonotonic --value"
    return sorted(
        tuple(
            int(value)
            for value in docker_exec(
                scenario,
                h,
                show.format(n=h[5:], p="ExecMainStart")
                + "; "
                + show.format(n=h[5:], p="ActiveEnter"),
            ).stdout.split()
        )
        for h in hosts
    )


def test_a_configuration_change_restarts_members_one_at_a_time(
    cluster_hosts: Scenario, created
) -> None:
    names = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
    pids = {h: docker_exec(cluster_hosts, h, "pidof etcd").stdout.strip() for h in names}
    endpoints = ",".join(f"https://etcd-k8s-{i}:2379" for i in (1, 2, 3))
    # A client writes all along; with one member down at a time every write succeeds.
    put = etcdctl("client-1", "put /rolling/$i $i", endpoints=endpoints)
    with ContinuousWriter(cluster_hosts, "client-1", put) as writer:
        run = run_pyinfra(
            cluster_hosts, "deploys/cluster.py", "--data", "etcd_tls_min_version=TLS1.3"
        )
    assert writer.writes > 10 and writer.failed == 0
    for host in names:
        assert "etcd | Rolling restart after a change" in run.changes[host]
        assert docker_exec(cluster_hosts, host, "pidof etcd").stdout.strip() != pids[host]
    # Restarts did not overlap: each member started only after the one before was back.
    spans = _start_spans(cluster_hosts, names)
    for (_, ready), (next_start, _) in itertools.pairwise(spans):
        assert next_start > ready
    assert cluster_healthy(cluster_hosts)
    back = run_pyinfra(cluster_hosts, "deploys/cluster.py")
    assert set(back.changes) == set(names)
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}


def test_a_fourth_member_joins_with_limit(cluster_hosts: Scenario, created) -> None:
    set_inventory(cluster_hosts, [h.name for h in cluster_hosts.hosts])
    # Not while the cluster is unhealthy.
    docker_exec(cluster_hosts, "etcd-k8s-3", "systemctl stop etcd-k8s-3.service")
    try:
        refused = run_pyinfra(
            cluster_hosts, "deploys/cluster.py", "--limit", FOURTH.name, check=False
        )
        assert refused.returncode != 0
        assert "refusing to add etcd-k8s-4" in refused.output
        assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"}
    finally:
        docker_exec(cluster_hosts, "etcd-k8s-3", "systemctl start etcd-k8s-3.service")
    for _ in range(60):
        if cluster_healthy(cluster_hosts):
            break
        time.sleep(0.5)
    run = run_pyinfra(cluster_hosts, "deploys/cluster.py", "--limit", FOURTH.name)
    assert set(run.changes) == {FOURTH.name}
    assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", FOURTH.name}
    assert cluster_healthy(cluster_hosts)
    config = docker_exec(cluster_hosts, FOURTH.name, "cat /etc/etcd/etcd-k8s-4.env").stdout
    assert "ETCD_INITIAL_CLUSTER_STATE=existing" in config.splitlines()
    # It joined as a learner (no vote while it caught up) and was promoted: a voter now.
    log = docker_exec(cluster_hosts, "etcd-k8s-1", "journalctl -o cat -u etcd-k8s-1").stdout
    added = [json.loads(line) for line in log.splitlines() if '"added member"' in line]
    fourth = [a for a in added if a["added-peer-peer-urls"] == [f"https://{FOURTH.address}:2380"]]
    assert fourth and fourth[-1]["added-peer-is-learner"] is True
    promoted = [line for line in log.splitlines() if '"promote member"' in line]
    assert any(fourth[-1]["added-peer-id"] in line for line in promoted)
    listed = json.loads(
        docker_exec(
            cluster_hosts, "etcd-k8s-1", etcdctl("etcd-k8s-1", "member list -w json")
        ).stdout
    )
    assert not [m for m in listed["members"] if m.get("isLearner")]
    got = docker_exec(
        cluster_hosts, FOURTH.name, etcdctl(FOURTH.name, "get /pki/greeting --print-value-only")
    )
    assert got.stdout.strip() == "hello"
    # The whole inventory converges without rewriting (or restarting) the other members: only
    # the backup cert-manager takes the CA's database with the new member's certificates.
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {"etcd-k8s-2": [REPLICATE]}
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}


def _serials(scenario: Scenario, host: str, files: str) -> set[int]:
    out = docker_exec(
        scenario, host, f"for f in {files}; do openssl x509 -in $f -noout -serial; done"
    )
    return {int(line.split("=")[1], 16) for line in out.stdout.split()}


def _crl(scenario: Scenario) -> set[int]:
    """The serials step-ca's CRL lists, read by a client as members read it."""
    out = docker_exec(
        scenario,
        "client-1",
        "curl -sf --cacert /etc/etcd/ssl/root_ca.crt https://etcd-k8s-1:9000/1.0/crl |"
        " openssl crl -inform DER -noout -text | awk '/Serial Number:/ { print $3 }'",
    )
    return {int(line, 16) for line in out.stdout.split()}


def _kept(scenario: Scenario, tag: str) -> None:
    """The fourth member's certificates and keys as they are now, kept on its host."""
    docker_exec(scenario, FOURTH.name, f"mkdir -p /root/kept/{tag} &&"
                f" cp {SSL}/{FOURTH.name}-*.crt {SSL}/{FOURTH.name}-*.key /root/kept/{tag}/")  # fmt: skip


def test_a_stopped_member_is_removed_and_every_certificate_it_had_revoked(
    cluster_hosts: Scenario, created
) -> None:
    """The fourth member's host stopped, the run leaving it out: the member is taken out
    through another, and every certificate the CA issued it (one renewed and one issued
    again before, besides the current ones), found in the CA's records, is revoked: listed in
    the CRL, refused by etcd, refused for renewal. Its host is cleaned up when it is back."""
    host = FOURTH.name
    _kept(cluster_hosts, "first")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    run_pyinfra(cluster_hosts, "deploys/renew.py", "--data", f"renew_before={now}",
                "--data", "renew_kinds=server", "--limit", host)  # fmt: skip
    docker_exec(cluster_hosts, host, f"rm -f {SSL}/{host}-peer.crt")
    run_pyinfra(cluster_hosts, "deploys/certs.py", "--limit", host)
    _kept(cluster_hosts, "second")
    serials = _serials(cluster_hosts, host, "/root/kept/*/*.crt")
    assert len(serials) == 5 and not serials & _crl(cluster_hosts)
    # The pairs as someone who took them from the host holds them: on client-1.
    pairs = subprocess.run(["docker", "exec", cluster_hosts.container(host), "tar", "-C", "/root",
                            "-cf", "-", "kept"], check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["docker", "exec", "-i", cluster_hosts.container("client-1"), "tar", "-C",
                    "/root", "-xf", "-"], input=pairs, check=True)  # fmt: skip
    subprocess.run(["docker", "stop", cluster_hosts.container(host)], check=True,
                   capture_output=True)  # fmt: skip
    remove = ["--data", f"etcd_remove_node={host}"]
    try:
        run = run_pyinfra(cluster_hosts, "deploys/remove_node.py", *remove, "--exclude", host)
        assert (
            "Take out an etcd member | Take etcd-k8s-4 out of etcd-k8s" in run.changes["etcd-k8s-1"]
        )
        assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"}
        assert cluster_healthy(cluster_hosts)
        assert serials <= _crl(cluster_hosts)
        # etcd refuses each of them on a member's client port; a member's own is accepted.
        health = (f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {SSL}/root_ca.crt"
                  " https://etcd-k8s-1:2379/health")  # fmt: skip
        for tag, kind in itertools.product(("first", "second"), ("peer", "server", "client")):
            pair = f"--cert /root/kept/{tag}/{host}-{kind}.crt --key /root/kept/{tag}/{host}-{kind}.key"
            answer = docker_exec(cluster_hosts, "client-1", f"{health} {pair}", check=False)
            assert answer.stdout != "200", (tag, kind)
        own = f"--cert {SSL}/client-1-client.crt --key {SSL}/client-1-client.key"
        assert docker_exec(cluster_hosts, "client-1", f"{health} {own}").stdout == "200"
        renewal = docker_exec(
            cluster_hosts, "client-1",
            "cd /root/kept/first && STEPPATH=/etc/step /opt/bin/step ca renew --force"
            f" {host}-client.crt {host}-client.key",
            check=False,
        )  # fmt: skip
        assert renewal.returncode != 0 and "lacked necessary authorization" in renewal.stderr
        # Nothing more to remove while the host is away.
        again = run_pyinfra(cluster_hosts, "deploys/remove_node.py", *remove, "--exclude", host)
        assert again.changes == {}
    finally:
        subprocess.run(["docker", "start", cluster_hosts.container(host)], check=True,
                       capture_output=True)  # fmt: skip
        # Its member keeps failing to start (the cluster took it out): it never finishes booting.
        wait_ready(cluster_hosts, [FOURTH], booted=False)
    # Back: the next run that reaches the host cleans it up.
    run = run_pyinfra(cluster_hosts, "deploys/remove_node.py", *remove)
    assert run.changes[host] == ["Clean up a removed member | Remove etcd-k8s-4"]
    left = docker_exec(
        cluster_hosts, host,
        "ls /etc/etcd/ssl /etc/systemd/system | grep -E 'etcd-k8s-4|step-renew' || true; "
        "systemctl is-active etcd-k8s-4.service || true",
    ).stdout.split()  # fmt: skip
    assert left == ["inactive"]
    assert run_pyinfra(cluster_hosts, "deploys/remove_node.py", *remove).changes == {}
    set_inventory(cluster_hosts, ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"])


def test_two_new_members_join_in_one_run_one_at_a_time(cluster_hosts: Scenario, created) -> None:
    """etcd-k8s-3 leaves; then one run adds it back and adds etcd-k8s-4: each is added and
    started only once the cluster is healthy with the one before, and writes go on."""
    set_inventory(cluster_hosts, [h.name for h in cluster_hosts.hosts])
    run_pyinfra(cluster_hosts, "deploys/remove_node.py", "--data", "etcd_remove_node=etcd-k8s-3")
    assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2"}
    new = ("etcd-k8s-3", FOURTH.name)
    endpoints = "https://etcd-k8s-1:2379,https://etcd-k8s-2:2379"
    put = etcdctl("client-1", "put /joins/$i $i", endpoints=endpoints)
    with ContinuousWriter(cluster_hosts, "client-1", put) as writer:
        run = run_pyinfra(cluster_hosts, "deploys/cluster.py")
    assert writer.writes > 5 and writer.failed == 0, writer.errors
    for host in new:
        assert "etcd | A new member joins the running cluster" in run.changes[host]
        config = docker_exec(cluster_hosts, host, f"cat /etc/etcd/{host}.env").stdout
        assert "ETCD_INITIAL_CLUSTER_STATE=existing" in config.splitlines()
    assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", *new}
    assert cluster_healthy(cluster_hosts)
    # One at a time: the second member started after the first was running.
    spans = _start_spans(cluster_hosts, new)
    assert spans[1][0] > spans[0][1]
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}
    run_pyinfra(
        cluster_hosts, "deploys/remove_node.py", "--data", f"etcd_remove_node={FOURTH.name}"
    )
    set_inventory(cluster_hosts, ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"])
    assert set(members(cluster_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"}
    # The CA's policy follows the inventory: without the host, its names are no longer allowed.
    converged = run_pyinfra(cluster_hosts, "deploys/cluster.py")
    assert "step-ca | Configure ca.json and file modes" in converged.changes["etcd-k8s-1"]
    config = docker_exec(cluster_hosts, "etcd-k8s-1", "cat /etc/step-ca/config/ca.json").stdout
    assert FOURTH.name not in config and FOURTH.address not in config


def test_snapshot_save_and_restore(
    cluster_hosts: Scenario, created, keys: dict[str, GpgKey], tmp_path: Path
) -> None:
    """The snapshot leaves its member encrypted to the backups' recipient; only that key
    restores it, on the members, and a wrong key changes nothing."""
    for key in ("a", "b", "c"):
        docker_exec(
            cluster_hosts, "etcd-k8s-1", etcdctl("etcd-k8s-1", f"put /snap/{key} {key}-value")
        )
    local = [
        "--data",
        f"etcd_snapshot_local_dir={tmp_path}",
        "--data",
        "etcd_snapshot_name=test.db",
    ]
    # Without a recipient nothing leaves the member in the clear unless asked for.
    unsealed = run_pyinfra(cluster_hosts, "deploys/etcd_backup.py", *local, check=False)
    assert unsealed.returncode != 0 and "etcd_snapshot_unencrypted=true" in unsealed.output
    assert "Starting operation" not in unsealed.output
    local += ["--data", f"ca_backup_recipient_key={keys['backup'].public}"]
    saved = run_pyinfra(cluster_hosts, "deploys/etcd_backup.py", *local)
    assert set(saved.changes) == {"etcd-k8s-1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.db.gpg", "test.db.gpg.sha256"]
    snapshot = tmp_path / "test.db.gpg"
    digest = (tmp_path / "test.db.gpg.sha256").read_text().split()[0]
    # Encrypted, and the operator's only on the controller too.
    assert snapshot.stat().st_mode & 0o777 == 0o600
    sealed = snapshot.read_bytes()
    assert hashlib.sha256(sealed).hexdigest() == digest
    assert keys["other"].decrypt(sealed).returncode != 0
    plain = keys["backup"].decrypt(sealed)
    assert plain.returncode == 0
    on_member = docker_exec(cluster_hosts, "etcd-k8s-1", "cat /var/backups/etcd/test.db.sha256")
    assert hashlib.sha256(plain.stdout).hexdigest() == on_member.stdout.split()[0]
    assert run_pyinfra(cluster_hosts, "deploys/etcd_backup.py", *local).changes == {}

    docker_exec(cluster_hosts, "etcd-k8s-1", etcdctl("etcd-k8s-1", "del --prefix /snap/"))
    restore = ["--data", f"etcd_restore_snapshot={snapshot}"]
    refused = run_pyinfra(cluster_hosts, "deploys/etcd_restore.py", *restore, check=False)
    assert refused.returncode != 0
    assert f"etcd_restore_confirm={digest}" in refused.output
    assert "Starting operation" not in refused.output
    confirmed = [*restore, "--data", f"etcd_restore_confirm={digest}"]
    keyless = run_pyinfra(cluster_hosts, "deploys/etcd_restore.py", *confirmed, check=False)
    assert keyless.returncode != 0 and "etcd_restore_private_key" in keyless.output
    assert "Starting operation" not in keyless.output
    # Another key: every member refuses before it stops etcd, and keeps running on its data.
    wrong = ["--data", f"etcd_restore_private_key={keys['other'].private}"]
    failed = run_pyinfra(cluster_hosts, "deploys/etcd_restore.py", *confirmed, *wrong, check=False)
    assert failed.returncode != 0 and "does not decrypt with the given key" in failed.output
    assert cluster_healthy(cluster_hosts)
    for host in ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"):
        left = docker_exec(
            cluster_hosts, host, "ls -A /var/lib/etcd /var/lib/etcd-step-pki/staging"
        )
        assert "before-restore" not in left.stdout and ".db" not in left.stdout

    right = ["--data", f"etcd_restore_private_key={keys['backup'].private}"]
    run_pyinfra(cluster_hosts, "deploys/etcd_restore.py", *confirmed, *right)
    assert cluster_healthy(cluster_hosts)
    for key in ("a", "b", "c"):
        got = docker_exec(
            cluster_hosts,
            "etcd-k8s-2",
            etcdctl("etcd-k8s-2", f"get /snap/{key} --print-value-only"),
        )
        assert got.stdout.strip() == f"{key}-value"
    # Neither the plaintext nor the key stays on a member.
    for host in ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"):
        staged = docker_exec(cluster_hosts, host, "ls -A /var/lib/etcd-step-pki/staging /run")
        assert ".db" not in staged.stdout and "gpg" not in staged.stdout
    assert run_pyinfra(cluster_hosts, "deploys/etcd_restore.py", *confirmed, *right).changes == {}
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}


@pytest.mark.parametrize(
    ("deploy", "data", "message"),
    [
        ("deploys/cluster.py", ["etcd_member_index=1"], "names must be unique"),
        ("deploys/remove_node.py", ["etcd_remove_node=client-1"], "is no host of the `etcd` group"),
        ("deploys/remove_node.py", [], "name the member with --data etcd_remove_node"),
        ("deploys/etcd_restore.py", ["etcd_restore_snapshot=/nonexistent.db"], "no snapshot file"),
        (
            "deploys/cluster.py",
            ["step_cert_default_duration=forever"],
            "step_cert_default_duration",
        ),
    ],
)
def test_bad_input_stops_before_any_change(
    cluster_hosts: Scenario, created, deploy: str, data: list[str], message: str
) -> None:
    args = [arg for item in data for arg in ("--data", item)]
    run = run_pyinfra(cluster_hosts, deploy, *args, check=False)
    assert run.returncode != 0
    assert message in run.output
    assert "Starting operation" not in run.output


def _exposure(scenario: Scenario, host: str, unit: str) -> float:
    """`systemd-analyze security`'s overall exposure of a unit (0 safe ... 10 unsafe)."""
    out = docker_exec(scenario, host, f"systemd-analyze security --no-pager {unit}").stdout
    last = out.strip().splitlines()[-1]
    return float(last.split(":", 1)[1].split()[0])


def test_units_are_hardened(cluster_hosts: Scenario, created) -> None:
    """The exposure systemd measures: the renewal units run as the certificate's owner with no
    capability; etcd as its user, writing its data directory only; step-ca as an account of
    its own with no capability, which owns the CA's database and nothing else."""
    assert _exposure(cluster_hosts, "etcd-k8s-2", "step-renew-etcd-k8s-2-peer.service") <= 2.0
    assert _exposure(cluster_hosts, "client-1", "step-renew-client-1-client.service") <= 2.0
    assert _exposure(cluster_hosts, "etcd-k8s-2", "etcd-k8s-2.service") <= 1.2
    assert _exposure(cluster_hosts, "etcd-k8s-1", "step-ca.service") <= 1.2


def test_step_ca_runs_as_its_own_account_with_copies_of_what_it_needs(
    cluster_hosts: Scenario, created
) -> None:
    """step-ca runs as `step`; the keys and passwords on disk stay root's 0400, out of that
    account's reach; step-ca reads its copies of the three files it needs from a runtime
    directory of its own (no root key there), and owns its database."""
    found = docker_exec(
        cluster_hosts,
        "etcd-k8s-1",
        "ps -o user= -p $(systemctl show -p MainPID --value step-ca);"
        " stat -c '%U %a %n' /etc/step-ca/secrets/intermediate_ca_key /etc/step-ca/secrets/password"
        " /etc/step-ca/db /etc/step-ca/db/bbolt.db /run/step-ca;"
        " runuser -u step -- cat /etc/step-ca/secrets/password >/dev/null 2>&1 && echo read;"
        " ls /run/step-ca",
    ).stdout.split()
    assert found == [
        "step",
        "root", "400", "/etc/step-ca/secrets/intermediate_ca_key",
        "root", "400", "/etc/step-ca/secrets/password",
        "step", "700", "/etc/step-ca/db",
        "step", "600", "/etc/step-ca/db/bbolt.db",
        "step", "700", "/run/step-ca",
        "ca.json", "intermediate_ca_key", "password",
    ]  # fmt: skip


def test_rolling_upgrade_to_37_and_the_downgrade_back(
    cluster_hosts: Scenario, created, release_archives: Path
) -> None:
    """A cluster made on the default 3.6 moves to 3.7 one member at a time, then back to 3.6
    through etcd's downgrade API, with a client writing all along that loses no write."""
    newest = "3.7.0"
    env = {
        "PKI_ARTIFACTS_DIR": str(
            artifacts.combined(release_archives, artifacts.upstream("etcd", newest))
        )
    }
    three = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
    endpoints = ",".join(f"https://{h}:2379" for h in three)
    put = etcdctl("client-1", "put /upgrade/$i $i", endpoints=endpoints)
    up = ["--data", f"etcd_version={newest}"]
    with ContinuousWriter(cluster_hosts, "client-1", put) as writer:
        run_pyinfra(cluster_hosts, "deploys/cluster.py", *up, env=env)
    assert writer.writes > 10 and writer.failed == 0, writer.errors
    wait_for_cluster_version(cluster_hosts, three, "3.7.0")
    assert etcd_versions(cluster_hosts, three) == {
        **dict.fromkeys(three, newest),
        "cluster": "3.7.0",
    }
    assert cluster_healthy(cluster_hosts)
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py", *up, env=env).changes == {}
    with ContinuousWriter(cluster_hosts, "client-1", put) as writer:
        run_pyinfra(cluster_hosts, "deploys/etcd_downgrade.py", env=env)
    assert writer.writes > 10 and writer.failed == 0, writer.errors
    default = VERSIONS["etcd"]
    assert etcd_versions(cluster_hosts, three) == {
        **dict.fromkeys(three, default),
        "cluster": "3.6.0",
    }
    assert cluster_healthy(cluster_hosts)
    assert run_pyinfra(cluster_hosts, "deploys/cluster.py").changes == {}
