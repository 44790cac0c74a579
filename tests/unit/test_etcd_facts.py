"""etcd facts parse what systemctl and etcdctl print."""

from __future__ import annotations

import json

from facts.etcd import EtcdCluster, EtcdMember, cluster_healthy

MARK = "### etcd-step-pki "


def test_member_fact_reads_properties_in_any_order() -> None:
    output = [f"{MARK}unit", "MainPID=42", "ActiveState=active", f"{MARK}data", "yes",
              f"{MARK}config", "name: etcd-k8s-1"]  # fmt: skip
    fact = EtcdMember().process(output)
    assert "--value" not in EtcdMember().command("c", "d", "u").get_raw_value()
    assert fact == {"config": "name: etcd-k8s-1\n", "bootstrapped": True, "active": True,
                    "pid": "42"}  # fmt: skip
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


def test_an_unreachable_cluster_is_not_healthy() -> None:
    fact = EtcdCluster().process([f"{MARK}members", "Error: context deadline exceeded"])
    assert fact["members"] == [] and "deadline" in fact["error"]
    assert not cluster_healthy(fact)


def test_a_members_own_status_is_found_by_its_id() -> None:
    from facts.etcd import member_status

    fact = EtcdCluster().process(_cluster([True, True, True]))
    assert member_status(fact, "etcd-k8s-1")["revision"] == 7
    assert member_status(fact, "etcd-k8s-2") is None  # it gave no status


def test_a_leader_hands_over_to_the_follower_that_applied_the_most() -> None:
    from operations.etcd.member import Etcdctl, Member
    from operations.etcd.restarts import rolling_restart
    from tests.unit.fakes import FakeHost, raw, run_op

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
    member = Member(
        host="etcd-k8s-3",
        name="etcd-k8s-3",
        address="10.0.0.3",
        data_dir="/var/lib/etcd/etcd-k8s-3",
        config_path="/etc/etcd/etcd-k8s-3.conf.yml",
        unit="etcd-k8s-3.service",
        etcdctl=Etcdctl("/opt/bin/etcdctl", "/ssl/root.crt", "/ssl/c.crt", "/ssl/c.key"),
    )
    host = FakeHost({EtcdMember: {"active": True}, EtcdCluster: view}, name="etcd-k8s-3")
    commands = raw(run_op(rolling_restart, host, member))
    assert commands[0].endswith("move-leader a2 >/dev/null")
    assert commands[1] == "systemctl restart etcd-k8s-3.service"
    # A follower restarts without a handover.
    view["status"] = [{**st, "leader": "a1"} for st in view["status"]]
    follower = FakeHost({EtcdMember: {"active": True}, EtcdCluster: view}, name="etcd-k8s-3")
    assert "move-leader" not in " ".join(raw(run_op(rolling_restart, follower, member)))
