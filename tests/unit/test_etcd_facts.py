"""etcd facts parse what systemctl and etcdctl print."""

from __future__ import annotations

import json
import shlex

import pytest

from etcd_step_pki.facts.etcd import EtcdCluster, EtcdMember, cluster_healthy

MARK = "### etcd-step-pki "


def test_member_fact_reads_properties_in_any_order() -> None:
    output = [f"{MARK}unit", "MainPID=42", "ActiveEnterTimestamp=@1700000000",
              "ActiveState=active", f"{MARK}data", "yes", f"{MARK}files",
              "1700000100 /etc/etcd/m.env", f"{MARK}config", "ETCD_NAME=etcd-k8s-1"]  # fmt: skip
    fact = EtcdMember().process(output)
    assert "--value" not in EtcdMember().command("c", "d", "u").get_raw_value()
    assert fact == {"config": "ETCD_NAME=etcd-k8s-1\n", "bootstrapped": True, "active": True,
                    "pid": "42", "started": 1700000000,
                    "modified": {"/etc/etcd/m.env": 1700000100}}  # fmt: skip
    stopped = EtcdMember().process([f"{MARK}unit", "ActiveState=inactive", "MainPID=0",
                                    f"{MARK}data", "no"])  # fmt: skip
    assert stopped["active"] is False and stopped["config"] is None


def _cluster(healthy: list[bool]) -> list[str]:
    members = {"members": [{"ID": 1 + i, "name": f"etcd-k8s-{i + 1}",
                            "peerURLs": [f"https://10.0.0.{i + 1}:2380"]} for i in range(3)]}  # fmt: skip
    health = [{"endpoint": f"https://10.0.0.{i + 1}:2379", "health": ok}
              for i, ok in enumerate(healthy)]  # fmt: skip
    status = [{"Endpoint": "https://10.0.0.1:2379", "Status": {"header": {"member_id": 1,
               "revision": 7}, "leader": 2, "dbSize": 20480, "version": "3.5.30"}}]  # fmt: skip
    return [f"{MARK}members", json.dumps(members), f"{MARK}health", json.dumps(health),
            f"{MARK}status", json.dumps(status)]  # fmt: skip


def test_cluster_fact_and_health() -> None:
    fact = EtcdCluster().process(_cluster([True, True, True]))
    assert [m["name"] for m in fact["members"]] == ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"]
    assert fact["status"][0]["leader"] == "2" and fact["status"][0]["revision"] == 7
    assert cluster_healthy(fact)
    assert not cluster_healthy(EtcdCluster().process(_cluster([True, False, True])))


def test_a_member_that_does_not_answer_is_read_among_etcdctls_log_lines() -> None:
    """etcdctl logs a retry (a JSON record) before its answer when a member is down."""
    log = json.dumps({"level": "warn", "ts": "2026-12-07T04:52:44Z", "msg": "retrying"})
    health = [{"endpoint": "https://a:2379", "health": True},
              {"endpoint": "https://d:2379", "health": False, "error": "deadline"}]  # fmt: skip
    output = [f"{MARK}members", json.dumps({"members": [{"ID": 1, "name": "a"}]}),
              f"{MARK}health", log, json.dumps(health), "Error: unhealthy cluster",
              f"{MARK}status", log, "[]"]  # fmt: skip
    fact = EtcdCluster().process(output)
    assert fact["error"] is None
    assert [h["healthy"] for h in fact["health"]] == [True, False]
    assert not cluster_healthy(fact)


def test_an_unreachable_cluster_is_not_healthy() -> None:
    fact = EtcdCluster().process([f"{MARK}members", "Error: context deadline exceeded"])
    assert fact["members"] == [] and "deadline" in fact["error"]
    assert not cluster_healthy(fact)


def test_a_members_own_status_is_found_by_its_id() -> None:
    from etcd_step_pki.facts.etcd import member_status

    fact = EtcdCluster().process(_cluster([True, True, True]))
    assert member_status(fact, "etcd-k8s-1")["revision"] == 7
    assert member_status(fact, "etcd-k8s-2") is None  # it gave no status


def test_a_leader_hands_over_to_the_follower_that_applied_the_most() -> None:
    from etcd_step_pki.operations.etcd.member import Etcdctl, Member
    from etcd_step_pki.operations.etcd.restarts import handover_target, rolling_restart
    from tests.unit.fakes import FakeHost, run_op

    names = {"a1": "etcd-k8s-1", "a2": "etcd-k8s-2", "a3": "etcd-k8s-3"}
    urls = {i: [f"https://{n}:2379"] for i, n in names.items()}
    applied = {"a1": 90, "a2": 100, "a3": 120}
    view = {
        "members": [{"id": i, "name": n, "client_urls": urls[i], "learner": False}
                    for i, n in names.items()],
        "health": [{"endpoint": urls[i][0], "healthy": True} for i in names],
        "status": [{"id": i, "leader": "a3", "applied": applied[i]} for i in names],
        "error": None,
    }  # fmt: skip
    # Called with plain values, as an operator's own deploy would.
    peers = [
        Member(
            host=n,
            name=n,
            address=f"10.0.0.{k}",
            data_dir=f"/var/lib/etcd/{n}",
            config_path=f"/etc/etcd/{n}.env",
            unit=f"{n}.service",
            etcdctl=Etcdctl("/opt/bin/etcdctl", "/ssl/root.crt", "/ssl/c.crt", "/ssl/c.key"),
        )
        for k, n in enumerate(names.values(), 1)
    ]
    member = peers[2]
    # The configuration changed after etcd started: a restart is due.
    running = {"active": True, "bootstrapped": True, "started": 100, "modified": {"/c": 200}}
    host = FakeHost({EtcdMember: running, EtcdCluster: view}, name="etcd-k8s-3")
    (step,) = run_op(rolling_restart, host, member, peers=peers)
    # The leader hands over at run time, in its turn, to the follower that applied the most.
    assert step.kwargs == {"handover": True}
    assert handover_target(view, "etcd-k8s-3") == "a2"
    bash, flag, restart, template = shlex.split(step.args[2].get_raw_value())
    assert (bash, flag, template) == ("bash", "-c", "etcd-rolling-restart.sh.j2")
    assert "unit=etcd-k8s-3.service\n" in restart
    assert 'if systemctl restart "$unit" && healthy; then' in restart
    # The gate asks the two others, each by its own endpoint.
    for other in ("10.0.0.1", "10.0.0.2"):
        assert f"https://{other}:2379" in restart
    # On failure its configuration goes back to the previous version.
    assert "files=(/etc/etcd/etcd-k8s-3.env)\n" in restart
    assert 'for f in "${files[@]}"; do\n    if [ -f "$f.previous" ]' in restart
    # A follower restarts without a handover.
    view["status"] = [{**st, "leader": "a1"} for st in view["status"]]
    assert handover_target(view, "etcd-k8s-3") is None
    # Nothing changed since etcd started: no restart at all.
    current = FakeHost({EtcdMember: {**running, "modified": {"/c": 50}}, EtcdCluster: view})
    assert run_op(rolling_restart, current, member, peers=peers) == []
    assert current.noops == ["etcd-k8s-3 runs on its current configuration"]


def test_a_member_whose_restart_failed_stops_every_restart_after_it() -> None:
    from pyinfra.api import OperationError

    from etcd_step_pki.operations.etcd import restarts
    from etcd_step_pki.operations.etcd.member import Etcdctl, Member
    from tests.unit.fakes import FakeHost, run_op

    member = Member("etcd-k8s-2", "etcd-k8s-2", "10.0.0.2", "/d", "/c", "etcd-k8s-2.service",
                    Etcdctl("/opt/bin/etcdctl", "/r", "/c", "/k"))  # fmt: skip
    stopped = {"active": False, "bootstrapped": True, "started": None, "modified": {}}
    host = FakeHost({EtcdMember: stopped}, name="etcd-k8s-2")
    restarts._failures(host.state).append("etcd-k8s-1")
    with pytest.raises(OperationError, match="etcd-k8s-1 did not come back"):
        run_op(restarts.rolling_restart, host, member, peers=[member])
    new = FakeHost({EtcdMember: {**stopped, "bootstrapped": False}}, name="etcd-k8s-2")
    assert run_op(restarts.rolling_restart, new, member, peers=[member]) == []


def test_the_health_fact_needs_every_member_healthy() -> None:
    from etcd_step_pki.facts.etcd import EtcdHealthy

    fact = EtcdHealthy()
    up = '{"endpoint":"https://10.0.0.1:2379","health":true,"took":"2ms"}'
    down = '{"endpoint":"https://10.0.0.2:2379","health":false,"error":"context deadline"}'
    assert fact.process([f"[{up},{up}]"]) is True
    assert fact.process([f"[{up},{down}]"]) is False
    assert fact.process(["[]"]) is False and fact.process([]) is False
    assert fact.process(["Error: context deadline exceeded"]) is False
