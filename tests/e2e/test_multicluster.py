"""Two etcd clusters, `k8s` and `k8s-events`, on the same three hosts and one CA: each has its
own members, ports, data, units, certificates and peer trust; one converges, restarts and is
backed up without the other noticing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import SSL, host_state
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

HOSTS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
CLUSTERS = {"k8s": 2379, "k8s-events": 2381}
PEER_PORTS = {"k8s": 2380, "k8s-events": 2382}


def _clusters(events: dict[str, object] | None = None) -> dict[str, dict[str, object]]:
    return {
        "k8s": {},
        "k8s-events": {"etcd_client_port": 2381, "etcd_peer_port": 2382, **(events or {})},
    }


def _set_clusters(scenario: Scenario, clusters: dict[str, dict[str, object]]) -> None:
    state_file = scenario.state_dir / "hosts.json"
    state = json.loads(state_file.read_text())
    state["etcd_clusters"] = clusters
    state_file.write_text(json.dumps(state, indent=2))


def _member(cluster: str, host: str) -> str:
    return f"etcd-{cluster}-{host.rsplit('-', 1)[1]}"


def _etcdctl(cert: str, port: int, *args: str, endpoints: str | None = None) -> str:
    """etcdctl with the certificate named `cert` (a member's or a client's) of ssl_dir."""
    return (
        f"/opt/bin/etcdctl --endpoints={endpoints or f'https://127.0.0.1:{port}'} "
        f"--cacert={SSL}/root_ca.crt --cert={SSL}/{cert}-client.crt "
        f"--key={SSL}/{cert}-client.key " + " ".join(args)
    )


def _status(scenario: Scenario, cluster: str, via: str = "etcd-k8s-1") -> dict[str, dict]:
    """`{member name: {"pid": ..., "leader": ...}}` of one cluster, as `via` sees it."""
    port = CLUSTERS[cluster]
    endpoints = ",".join(f"https://{h}:{port}" for h in HOSTS)
    out = docker_exec(
        scenario,
        via,
        _etcdctl(_member(cluster, via), port, "endpoint status -w json", endpoints=endpoints),
    ).stdout
    found = {}
    for item in json.loads(out):
        host = item["Endpoint"].split("//")[1].split(":")[0]
        found[_member(cluster, host)] = {
            "leader": item["Status"]["leader"],
            "pid": docker_exec(
                scenario, host, f"systemctl show -p MainPID --value {_member(cluster, host)}"
            ).stdout.strip(),
        }
    return found


def _gateway_read(scenario: Scenario, client: str, port: int) -> int:
    """The HTTP status of a read through etcd's JSON gateway with `client`'s certificate."""
    return int(
        docker_exec(
            scenario,
            "client-1",
            f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 --cacert {SSL}/root_ca.crt"
            f" --cert {SSL}/{client}-client.crt --key {SSL}/{client}-client.key"
            f' -d \'{{"key": "Lw=="}}\' https://etcd-k8s-2:{port}/v3/kv/range',
        ).stdout
    )


@pytest.fixture(scope="module")
def two_clusters(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-multi", "172.28.77.0/24", release_archives)
    scenario.extra["etcd_clusters"] = _clusters()
    with scenario_hosts(scenario) as started:
        run_pyinfra(started, "deploys/cluster.py")
        yield started


def test_each_cluster_has_its_own_members_ports_data_units_and_certificates(
    two_clusters: Scenario,
) -> None:
    for host in HOSTS:
        for cluster, port in CLUSTERS.items():
            member = _member(cluster, host)
            show = docker_exec(
                two_clusters, host, f"systemctl is-active {member}; systemctl is-enabled {member}"
            ).stdout.split()
            assert show == ["active", "enabled"]
            env = docker_exec(two_clusters, host, f"cat /etc/etcd/{member}.env").stdout
            assert f"ETCD_DATA_DIR=/var/lib/etcd/{member}\n" in env
            assert f"ETCD_PEER_CERT_ALLOWED_CN=etcd-{cluster}-peer\n" in env
            assert f":{port}," in env and f":{PEER_PORTS[cluster]}\n" in env
            assert f"ETCD_INITIAL_CLUSTER_TOKEN=etcd-{cluster}\n" in env
            modes = docker_exec(
                two_clusters,
                host,
                f"stat -L -c '%a %U' /var/lib/etcd/{member} {SSL}/{member}-peer.key",
            ).stdout.split()
            assert modes == ["700", "etcd", "400", "etcd"]
            subject = docker_exec(
                two_clusters, host, f"openssl x509 -in {SSL}/{member}-peer.crt -noout -subject"
            ).stdout
            assert f"CN = etcd-{cluster}-peer" in subject
            timer = f"step-renew-{member}-peer.timer"
            assert docker_exec(
                two_clusters, host, f"systemctl is-active {timer}"
            ).stdout.strip() == ("active")
        # One CA, one revocation list, one trust for both.
        assert docker_exec(two_clusters, host, f"ls {SSL}/ca.crl {SSL}/root_ca.crt").returncode == 0
    for cluster in CLUSTERS:
        members = _status(two_clusters, cluster)
        assert sorted(members) == sorted(_member(cluster, h) for h in HOSTS)
    # The client holds a client certificate of each cluster.
    ssl = docker_exec(two_clusters, "client-1", f"ls {SSL}").stdout.split()
    assert {"client-1-client.crt", "client-1-k8s-events-client.crt"} <= set(ssl)


def test_a_client_writes_to_both_and_each_keeps_its_own_data(two_clusters: Scenario) -> None:
    for cluster, port in CLUSTERS.items():
        cert = "client-1" if cluster == "k8s" else "client-1-k8s-events"
        endpoints = f"https://etcd-k8s-2:{port}"
        docker_exec(
            two_clusters,
            "client-1",
            _etcdctl(cert, port, f"put /which {cluster}", endpoints=endpoints),
        )
    for cluster, port in CLUSTERS.items():
        cert = "client-1" if cluster == "k8s" else "client-1-k8s-events"
        got = docker_exec(
            two_clusters,
            "client-1",
            _etcdctl(
                cert, port, "get /which --print-value-only", endpoints=f"https://etcd-k8s-3:{port}"
            ),
        ).stdout.strip()
        assert got == cluster


def test_each_clusters_client_port_accepts_its_own_client_certificates_only(
    two_clusters: Scenario,
) -> None:
    """One CA issues both clusters' certificates, and they chain to the same root: a client
    port still accepts only its own cluster's client certificates, which the CA gave its
    cluster's client name; /health still answers there."""

    def read(host: str, cert: str, port: int) -> int:
        command = (
            f"/opt/bin/etcdctl --endpoints=https://etcd-k8s-2:{port} --cacert={SSL}/root_ca.crt"
            f" --cert={SSL}/{cert}.crt --key={SSL}/{cert}.key --dial-timeout=3s"
            " --command-timeout=5s get /which"
        )
        return docker_exec(two_clusters, host, command, check=False).returncode

    own_client = {"k8s": "client-1-client", "k8s-events": "client-1-k8s-events-client"}
    for cluster, port in CLUSTERS.items():
        other = next(c for c in CLUSTERS if c != cluster)
        member, others = _member(cluster, "etcd-k8s-1"), _member(other, "etcd-k8s-1")
        assert read("client-1", own_client[cluster], port) == 0
        assert read("etcd-k8s-1", f"{member}-client", port) == 0
        # Another cluster's client certificates, and any peer or server certificate: refused.
        assert read("client-1", own_client[other], port) != 0
        assert read("etcd-k8s-1", f"{others}-client", port) != 0
        assert read("etcd-k8s-1", f"{member}-peer", port) != 0
        assert read("etcd-k8s-1", f"{member}-server", port) != 0
        health = docker_exec(
            two_clusters,
            "client-1",
            f"curl -s --max-time 5 --cacert {SSL}/root_ca.crt --cert {SSL}/{own_client[cluster]}.crt"
            f" --key {SSL}/{own_client[cluster]}.key https://etcd-k8s-2:{port}/health",
            check=False,
        ).stdout
        assert json.loads(health)["health"] == "true"


def test_the_ca_refuses_a_name_outside_the_provisioners_cluster(two_clusters: Scenario) -> None:
    """A token of one cluster's provisioner for the other cluster's member (as a stolen
    provisioner key would mint it) gets no certificate: step-ca refuses it."""
    token = docker_exec(
        two_clusters,
        "etcd-k8s-1",
        "STEPPATH=/etc/step-ca /opt/bin/step ca token etcd-k8s-events-2 --san etcd-k8s-2"
        " --provisioner etcd-pki-k8s-server --provisioner-password-file"
        " /etc/step-ca/secrets/provisioner_password --ca-url https://etcd-k8s-1:9000"
        " --root /etc/step-ca/certs/root_ca.crt",
    ).stdout.strip()
    refused = docker_exec(
        two_clusters,
        "etcd-k8s-2",
        'cd /tmp && STEP_TOKEN="$(cat)" STEPPATH=/etc/step /opt/bin/step ca certificate'
        " etcd-k8s-events-2 stolen.crt stolen.key --force",
        input=token,
        check=False,
    )
    assert refused.returncode != 0
    assert "etcd-k8s-events-2 is not a name of cluster k8s" in refused.stderr
    assert docker_exec(
        two_clusters, "etcd-k8s-2", "test -e /tmp/stolen.crt", check=False
    ).returncode


def test_a_member_of_one_cluster_is_refused_on_the_others_peer_port(
    two_clusters: Scenario,
) -> None:
    def peer_call(cluster_cert: str, peer_port: int) -> str:
        cert = _member(cluster_cert, "etcd-k8s-1")
        return docker_exec(
            two_clusters,
            "etcd-k8s-1",
            f"curl -s --http1.1 --max-time 5 --cacert {SSL}/root_ca.crt --cert {SSL}/{cert}-peer.crt"
            f" --key {SSL}/{cert}-peer.key -o /dev/null -w '%{{http_code}}'"
            f" https://etcd-k8s-2:{peer_port}/members",
            check=False,
        ).stdout.strip()

    for cluster, peer_port in PEER_PORTS.items():
        assert peer_call(cluster, peer_port) == "200"
        other = next(c for c in PEER_PORTS if c != cluster)
        assert peer_call(other, peer_port) == "000"  # the TLS connection is refused


def test_a_rolling_restart_of_one_cluster_leaves_the_other_untouched(
    two_clusters: Scenario,
) -> None:
    """k8s-events changes its compaction and asks for etcd's JSON gateway: its members restart
    onto both, the gateway answers there (and, without etcd's client check, to the other
    cluster's client too), and k8s keeps its processes, its leader and its gateway off."""
    before = {cluster: _status(two_clusters, cluster) for cluster in CLUSTERS}
    changed = {"etcd_compaction_retention": "2h", "etcd_http_gateway": True}
    _set_clusters(two_clusters, _clusters(changed))
    port = CLUSTERS["k8s-events"]
    endpoints = ",".join(f"https://{h}:{port}" for h in HOSTS)
    put = _etcdctl("client-1-k8s-events", port, "put /events/$i $i", endpoints=endpoints)
    try:
        with ContinuousWriter(two_clusters, "client-1", put) as writer:
            run = run_pyinfra(two_clusters, "deploys/cluster.py")
        assert writer.writes > 5 and writer.failed == 0, writer.errors
        after = {cluster: _status(two_clusters, cluster) for cluster in CLUSTERS}
        # The k8s cluster: the same processes, the same leader.
        assert after["k8s"] == before["k8s"]
        # Every member of k8s-events restarted on its new configuration.
        for host in HOSTS:
            member = _member("k8s-events", host)
            assert after["k8s-events"][member]["pid"] != before["k8s-events"][member]["pid"]
            env = docker_exec(two_clusters, host, f"cat /etc/etcd/{member}.env").stdout
            assert "ETCD_AUTO_COMPACTION_RETENTION=2h\n" in env
            k8s_env = docker_exec(two_clusters, host, f"cat /etc/etcd/{_member('k8s', host)}.env")
            assert "ETCD_AUTO_COMPACTION_RETENTION=1h\n" in k8s_env.stdout
            assert "etcd | Rolling restart after a change" in run.changes[host]
        assert _gateway_read(two_clusters, "client-1-k8s-events", 2381) == 200
        assert _gateway_read(two_clusters, "client-1", 2381) == 200
        assert _gateway_read(two_clusters, "client-1", 2379) == 404
        assert run_pyinfra(two_clusters, "deploys/cluster.py").changes == {}
    finally:
        _set_clusters(two_clusters, _clusters())
    run_pyinfra(two_clusters, "deploys/cluster.py")


def test_a_rerun_changes_nothing_and_status_reports_both(two_clusters: Scenario) -> None:
    assert run_pyinfra(two_clusters, "deploys/cluster.py").changes == {}
    report = run_pyinfra(two_clusters, "deploys/status.py", "--data", "status_format=json")
    document = json.loads(report.stdout.strip().splitlines()[-1])
    assert document["ok"] is True
    hosts = {item["host"]: item for item in document["hosts"]}
    for host in HOSTS:
        parts = hosts[host]["etcd_clusters"]
        assert sorted(parts) == sorted(CLUSTERS)
        assert all(part["healthy"] for part in parts.values())
        assert len(hosts[host]["certificates"]) == 6
    assert len(hosts["client-1"]["certificates"]) == 2


def test_a_one_cluster_deploy_needs_the_cluster_named(two_clusters: Scenario) -> None:
    before = {h: host_state(two_clusters, h) for h in HOSTS}
    refused = run_pyinfra(
        two_clusters,
        "deploys/remove_node.py",
        "--data",
        "etcd_remove_node=etcd-k8s-3",
        check=False,
    )
    assert refused.returncode != 0
    assert "etcd_cluster" in refused.output and "k8s-events" in refused.output
    assert {h: host_state(two_clusters, h) for h in HOSTS} == before


def test_one_clusters_snapshot_restores_that_cluster_only(two_clusters: Scenario) -> None:
    """etcd_backup.py and etcd_restore.py with etcd_cluster: the snapshot is of that cluster,
    and restoring it leaves the other's data, members and leader as they were."""
    port = CLUSTERS["k8s-events"]
    events = _etcdctl("etcd-k8s-events-1", port, "put /snap before")
    docker_exec(two_clusters, "etcd-k8s-1", events)
    name = "events.db"
    local = two_clusters.state_dir / "snapshots"
    run_pyinfra(
        two_clusters,
        "deploys/etcd_backup.py",
        "--data", "etcd_cluster=k8s-events",
        "--data", "etcd_snapshot_unencrypted=true",
        "--data", f"etcd_snapshot_name={name}",
        "--data", f"etcd_snapshot_local_dir={local}",
    )  # fmt: skip
    snapshot = local / name
    assert snapshot.is_file()
    docker_exec(two_clusters, "etcd-k8s-1", _etcdctl("etcd-k8s-events-1", port, "put /snap after"))
    docker_exec(two_clusters, "etcd-k8s-1", _etcdctl("etcd-k8s-1", 2379, "put /k8s kept"))
    k8s_before = _status(two_clusters, "k8s")
    digest = snapshot.with_name(f"{name}.sha256").read_text().split()[0]
    run_pyinfra(
        two_clusters,
        "deploys/etcd_restore.py",
        "--data", "etcd_cluster=k8s-events",
        "--data", f"etcd_restore_snapshot={snapshot}",
        "--data", f"etcd_restore_confirm={digest}",
    )  # fmt: skip
    value = docker_exec(
        two_clusters,
        "etcd-k8s-2",
        _etcdctl("etcd-k8s-events-2", port, "get /snap --print-value-only"),
    ).stdout.strip()
    assert value == "before"
    assert _status(two_clusters, "k8s") == k8s_before
    kept = docker_exec(
        two_clusters, "etcd-k8s-2", _etcdctl("etcd-k8s-2", 2379, "get /k8s --print-value-only")
    ).stdout.strip()
    assert kept == "kept"
