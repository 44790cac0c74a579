"""Several etcd clusters on one CA (`etcd_clusters`): each host's view of each cluster, the
names, ports and certificates of each, the CA's profiles, and the checks made before any
host is touched."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pyinfra.api import Config, State
from pyinfra.context import ctx_host, ctx_state

from etcd_step_pki.deploys.settings import (
    SettingsError,
    all_settings,
    cluster_views,
    each_cluster,
    load_settings,
    one_cluster,
    validate_inventory,
)
from etcd_step_pki.deploys.settings.validation import validate_run
from tests.unit.test_settings import _inventory

TWO = {
    "etcd_clusters": {
        "k8s": {},
        "k8s-events": {"etcd_client_port": 2381, "etcd_peer_port": 2382},
    }
}


@contextmanager
def _on(data: dict, name: str = "etcd-k8s-2") -> Iterator[None]:
    inventory = _inventory(data)
    with ctx_state.use(State(inventory, Config())), ctx_host.use(inventory.get_host(name)):
        yield


def test_one_cluster_by_default_as_before() -> None:
    run = validate_run(_inventory())
    assert run.clusters == ("k8s",)
    view = run.host_settings("etcd-k8s-2")
    assert view.memberships == (("k8s", "etcd-k8s-2"),)
    assert view.certificates == view.host_certificates
    assert [c.crt for c in view.certificates] == [
        f"/etc/etcd/ssl/etcd-k8s-2-{kind}.crt" for kind in ("peer", "server", "client")
    ]


def test_each_host_has_a_view_of_each_cluster_with_its_own_ports_and_names() -> None:
    run = validate_run(_inventory(TWO))
    assert run.clusters == ("k8s", "k8s-events")
    k8s, events = run.views["k8s"]["etcd-k8s-2"], run.views["k8s-events"]["etcd-k8s-2"]
    assert (k8s.node_name, k8s.etcd.client_port, k8s.etcd.peer_port) == ("etcd-k8s-2", 2379, 2380)
    assert (events.node_name, events.etcd.client_port, events.etcd.peer_port) == (
        "etcd-k8s-events-2",
        2381,
        2382,
    )
    assert events.data_dir == "/var/lib/etcd/etcd-k8s-events-2"
    assert events.unit == "etcd-k8s-events-2.service"
    assert events.profiles["peer"].common_name == "etcd-k8s-events-peer"
    assert events.profiles["peer"].provisioner == "etcd-pki-k8s-events-peer"
    # The host issues and renews the certificates of both; the CA has each cluster's provisioners.
    assert len(k8s.host_certificates) == 6
    assert {p.provisioner for p in k8s.ca_profiles} == {
        f"etcd-pki-{cluster}-{kind}"
        for cluster in ("k8s", "k8s-events")
        for kind in ("peer", "server", "client")
    }
    assert k8s.data_dirs == ["/var/lib/etcd/etcd-k8s-2", "/var/lib/etcd/etcd-k8s-events-2"]
    # The client: its short name in its first cluster, with the cluster's in the other.
    client = run.views["k8s-events"]["client-1"]
    assert [c.subject for c in client.host_certificates] == ["client-1", "client-1-k8s-events"]
    assert client.certificates[0].crt == "/etc/etcd/ssl/client-1-k8s-events-client.crt"
    # The CA's records keep the name of etcd_cluster_name.
    assert events.ca_cluster == "k8s" and events.root_pin.record.endswith("k8s.root-sha256")


def test_a_host_in_one_cluster_only_is_no_member_of_the_other() -> None:
    inventory = _inventory(TWO)
    inventory.get_host("etcd-k8s-3").data.override_datas["etcd_clusters"] = {"k8s": {}}
    run = validate_run(inventory)
    assert not run.views["k8s-events"]["etcd-k8s-3"].is_member
    assert run.views["k8s"]["etcd-k8s-3"].is_member
    members = [s.node_name for s in run.views["k8s-events"].values() if s.is_member]
    assert members == ["etcd-k8s-events-1", "etcd-k8s-events-2"]


def test_turns_and_the_named_cluster_choose_the_views() -> None:
    with _on(TWO):
        assert load_settings().cluster == "k8s"  # outside a turn: the host's first
        seen = []
        for cluster in each_cluster():
            seen.append((cluster, load_settings().node_name, len(all_settings())))
        assert seen == [("k8s", "etcd-k8s-2", 4), ("k8s-events", "etcd-k8s-events-2", 4)]
        assert [v.cluster for v in cluster_views()] == ["k8s", "k8s-events"]
        with pytest.raises(SettingsError, match=r"remove_node.py acts on one cluster.*k8s-events"):
            one_cluster("remove_node.py")
    with _on({**TWO, "etcd_cluster": "k8s-events"}):
        assert one_cluster("remove_node.py") == "k8s-events"
        assert load_settings().node_name == "etcd-k8s-events-2"
        assert list(each_cluster()) == ["k8s-events"]


@pytest.mark.parametrize(
    ("clusters", "problem"),
    [
        ({"k8s": {}, "k8s-events": {}}, "k8s-events: etcd_client_port 2379 is also"),
        ({"k8s": {}, "b": {"etcd_client_port": 9000, "etcd_peer_port": 2382}}, "step_ca_port"),
        ({"k8s": {}, "b": {"etcd_client_port": 2381, "etcd_peer_port": 2380}}, "2380 is also"),
        ({"K8S": {}}, "is not a cluster name"),
        ({"k8s": {"bin_dir": "/usr/bin"}}, "'bin_dir' cannot differ between clusters"),
        ({"k8s": {"etcd_client_port": "2379"}}, "k8s: etcd_client_port: '2379' is not an integer"),
        ({}, "is not a mapping of cluster names"),
    ],
)
def test_bad_clusters_are_refused_before_any_change(clusters: dict, problem: str) -> None:
    with pytest.raises(SettingsError, match="`etcd_clusters`") as error:
        validate_inventory(_inventory({"etcd_clusters": clusters}))
    assert problem in str(error.value)


def test_an_unknown_cluster_named_for_the_run_is_refused() -> None:
    with pytest.raises(SettingsError, match="`etcd_cluster`: 'nope' is no cluster"):
        validate_inventory(_inventory({**TWO, "etcd_cluster": "nope"}))


def test_the_member_index_comes_from_the_name_in_any_of_its_clusters() -> None:
    inventory = _inventory({"etcd_clusters": {"a": {}, "b": {"etcd_client_port": 2381,
                                                           "etcd_peer_port": 2382}}})  # fmt: skip
    inventory.get_host("etcd-k8s-3").data.override_datas["etcd_clusters"] = {
        "a": {},
        "b": {"etcd_client_port": 2381, "etcd_peer_port": 2382, "etcd_member_index": 7},
    }
    run = validate_run(inventory)
    # No cluster is k8s, but the name etcd-k8s-2 is of the CA's cluster (etcd_cluster_name).
    assert run.views["a"]["etcd-k8s-2"].node_name == "etcd-a-2"
    assert run.views["b"]["etcd-k8s-2"].node_name == "etcd-b-2"
    assert run.views["b"]["etcd-k8s-3"].node_name == "etcd-b-7"
    assert run.views["a"]["etcd-k8s-3"].node_name == "etcd-a-3"


def test_the_http_gateway_is_one_clusters_choice_and_drops_its_client_check() -> None:
    """etcd cannot serve its JSON gateway beside the client check (etcd-io/etcd#15755): the
    cluster that asks for the gateway runs without the check, the other keeps it."""
    from etcd_step_pki.deploys.components import arguments
    from etcd_step_pki.operations.etcd.configuration import member_config

    clusters = {"k8s": {}, "k8s-events": {**TWO["etcd_clusters"]["k8s-events"]}}
    clusters["k8s-events"]["etcd_http_gateway"] = True
    run = validate_run(_inventory({"etcd_clusters": clusters}))
    env = {
        cluster: member_config(
            arguments.member(view), arguments.member_options(view), "x", "new"
        ).splitlines()
        for cluster, view in ((c, run.views[c]["etcd-k8s-2"]) for c in run.clusters)
    }
    assert "ETCD_CLIENT_CERT_ALLOWED_HOSTNAME=k8s.etcd-clients.invalid" in env["k8s"]
    assert "ETCD_ENABLE_GRPC_GATEWAY=false" in env["k8s"]
    assert not [line for line in env["k8s-events"] if "ALLOWED_HOSTNAME" in line]
    assert not [line for line in env["k8s-events"] if "GRPC_GATEWAY" in line]
    # The peer port keeps its own check.
    assert "ETCD_PEER_CERT_ALLOWED_CN=etcd-k8s-events-peer" in env["k8s-events"]
