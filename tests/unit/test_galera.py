"""ca_ha=active-active: the Galera layout checked before any host is touched, what each host
does in it, and the files and ca.json it runs with."""

from __future__ import annotations

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.deploys.settings import SettingsError, validate_inventory
from etcd_step_pki.operations import galera
from etcd_step_pki.operations.ca import Durations, desired_config
from tests.unit.test_settings import _inventory

ACTIVE = {"ca_ha": "active-active", "ca_galera_arbitrator": "etcd-k8s-3"}


def test_the_standby_layout_has_no_database_cluster() -> None:
    settings = validate_inventory(_inventory())
    assert all(s.galera is None and s.galera_role is None for s in settings.values())
    assert settings["etcd-k8s-1"].ca_db_type == "bbolt"
    assert not any(p.kind == "galera" for p in settings["etcd-k8s-1"].ca_profiles)


def test_two_cert_managers_and_an_arbitrator_make_three_votes() -> None:
    settings = validate_inventory(_inventory(ACTIVE))
    layout = settings["etcd-k8s-1"].galera
    assert layout is not None
    assert [(n.name, n.address) for n in layout.nodes] == [
        ("etcd-k8s-1", "10.0.0.1"),
        ("etcd-k8s-2", "10.0.0.2"),
    ]
    assert layout.arbitrator is not None and layout.arbitrator.address == "10.0.0.3"
    roles = {name: s.galera_role for name, s in settings.items()}
    assert roles == {
        "etcd-k8s-1": "node",
        "etcd-k8s-2": "node",
        "etcd-k8s-3": "arbitrator",
        "client-1": None,
    }
    primary = settings["etcd-k8s-1"]
    assert primary.ca_db_type == "mysql"
    assert any(p.provisioner == "etcd-pki-galera" for p in primary.ca_profiles)
    (cert,) = settings["etcd-k8s-3"].galera_certificates
    assert cert.crt == f"{galera.GALERA_SSL_DIR}/galera.crt"
    assert cert.reload == galera.RELOAD["arbitrator"]
    assert settings["client-1"].galera_certificates == ()


def test_three_cert_managers_need_no_arbitrator() -> None:
    inventory = _inventory(
        {"ca_ha": "active-active"}, managers=("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
    )
    layout = validate_inventory(inventory)["client-1"].galera
    assert layout is not None and layout.arbitrator is None and len(layout.nodes) == 3


@pytest.mark.parametrize(
    ("data", "managers", "problem"),
    [
        (
            {"ca_ha": "active-active"},
            ("etcd-k8s-1", "etcd-k8s-2"),
            "`ca_galera_arbitrator`.*majority",
        ),
        ({"ca_ha": "active-active"}, ("etcd-k8s-1",), "`ca_ha`.*two cert-managers"),
        (
            {**ACTIVE, "ca_galera_arbitrator": "etcd-k8s-2"},
            ("etcd-k8s-1", "etcd-k8s-2"),
            "is a cert-manager",
        ),
        (
            {**ACTIVE, "ca_galera_arbitrator": "nowhere"},
            ("etcd-k8s-1", "etcd-k8s-2"),
            "no inventory host",
        ),
        ({"ca_galera_arbitrator": "etcd-k8s-3"}, ("etcd-k8s-1", "etcd-k8s-2"), "only with ca_ha"),
        (
            {**ACTIVE, "ca_active": "etcd-k8s-2"},
            ("etcd-k8s-1", "etcd-k8s-2"),
            "`ca_active`.*nothing fails over",
        ),
        ({"ca_ha": "both"}, ("etcd-k8s-1", "etcd-k8s-2"), "`ca_ha`"),
    ],
)
def test_a_layout_that_cannot_hold_is_refused(data: dict, managers: tuple, problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        validate_inventory(_inventory(data, managers=managers))


def _peers() -> galera.GaleraPeers:
    return galera.peers_of(
        "etcd-pki-k8s",
        "etcd-k8s-2",
        [("etcd-k8s-1", "10.0.0.1"), ("etcd-k8s-2", "10.0.0.2")],
        ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
    )


def test_a_node_replicates_over_tls_with_the_cluster_s_hosts_only() -> None:
    text = galera.galera_config(_peers())
    assert "wsrep_cluster_address = gcomm://10.0.0.1,10.0.0.2\n" in text
    assert "wsrep_node_address = 10.0.0.2\n" in text
    assert "wsrep_allowlist = 10.0.0.1,10.0.0.2,10.0.0.3\n" in text
    assert f"socket.ssl_cert={galera.GALERA_SSL_DIR}/galera.crt" in text
    assert "wsrep_sync_wait = 1" in text and "encrypt = 3" in text
    unit = galera.arbitrator_unit(_peers())
    assert "User=garbd" in unit and "--address gcomm://10.0.0.1,10.0.0.2 " in unit
    assert f"socket.ssl_key={galera.GALERA_SSL_DIR}/galera.key" in unit


def _ca_json(db: dict) -> dict:
    return {"db": db, "authority": {"provisioners": []}}


def test_ca_json_reaches_the_local_node_without_a_password() -> None:
    wanted = desired_config(
        _ca_json({"type": "badgerv2", "dataSource": "/etc/step-ca/db"}),
        path="/etc/step-ca",
        dns_names=["etcd-k8s-1"],
        port=9000,
        db_type="mysql",
        durations=Durations("17520h", "26280h", "1h"),
        db_user="step",
    )
    assert wanted["db"] == {
        "type": "mysql",
        "dataSource": "step@unix(/run/mysqld/mysqld.sock)/",
        "database": "step_ca",
    }


def test_a_ca_with_bbolt_records_is_not_switched_silently() -> None:
    from etcd_step_pki.facts.ca import CAState
    from etcd_step_pki.operations import ca
    from tests.unit.fakes import FakeHost, run_op

    state = {
        "config": _ca_json({"type": "bbolt", "dataSource": "/etc/step-ca/db/bbolt.db"}),
        "root": None,
        "intermediate": None,
        "files": {},
    }
    with pytest.raises(OperationError, match="moving them to the Galera database"):
        run_op(
            ca.configuration,
            FakeHost({CAState: state}),
            "/etc/step-ca",
            dns_names=["etcd-k8s-1"],
            port=9000,
            db_type="mysql",
            durations=Durations("17520h", "26280h", "1h"),
        )
