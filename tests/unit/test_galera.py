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
    with pytest.raises(OperationError, match="nothing moves them to the Galera database"):
        run_op(
            ca.configuration,
            FakeHost({CAState: state}),
            "/etc/step-ca",
            dns_names=["etcd-k8s-1"],
            port=9000,
            db_type="mysql",
            durations=Durations("17520h", "26280h", "1h"),
        )


def test_hosts_reach_every_ca_in_order_and_the_units_try_each() -> None:
    from etcd_step_pki.operations.every_ca import at_first_ca

    settings = validate_inventory(_inventory(ACTIVE))
    urls = ("https://etcd-k8s-1:9000", "https://etcd-k8s-2:9000")
    assert settings["client-1"].every_ca_url == urls
    assert validate_inventory(_inventory())["client-1"].every_ca_url == ("https://etcd-k8s-1:9000",)
    named = validate_inventory(_inventory({**ACTIVE, "step_ca_url": "https://ca.example:9000"}))
    assert named["client-1"].every_ca_url == ("https://ca.example:9000",)
    assert at_first_ca("/opt/bin", urls[:1]) == ("", urls[0])
    prefix, mark = at_first_ca("/opt/bin", urls)
    assert prefix == f"/opt/bin/etcd-pki-first-ca {' '.join(urls)} -- " and mark == "@CA@"


def test_the_helper_runs_the_command_at_each_ca_until_one_answers(tmp_path) -> None:
    import subprocess

    from etcd_step_pki.operations.every_ca import first_ca_script

    helper = tmp_path / "first-ca"
    helper.write_text(first_ca_script())
    log = tmp_path / "log"
    # The command fails for the first CA and works for the second: the third is never asked.
    command = [
        "sh",
        "-c",
        'echo "$1" >> "$2"; [ "$1" = https://b/1.0/crl ]',
        "x",
        "@CA@/1.0/crl",
        str(log),
    ]
    run = subprocess.run(["bash", str(helper), "https://a", "https://b", "https://c", "--", *command],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0
    assert log.read_text().split() == ["https://a/1.0/crl", "https://b/1.0/crl"]
    assert "failed at https://a" in run.stderr
    failing = subprocess.run(["bash", str(helper), "https://a", "--", "sh", "-c", "exit 7"],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert failing.returncode == 7


def test_renewal_units_try_every_ca() -> None:
    from etcd_step_pki.operations.renewal import RenewalSchedule, unit_files

    settings = validate_inventory(_inventory(ACTIVE))["client-1"]
    from etcd_step_pki.deploys.components.arguments import step_node

    files = unit_files(settings.host_certificates, step_node(settings), settings.every_ca_url,
                       RenewalSchedule())  # fmt: skip
    service = files["step-renew-client-1-client.service"]
    assert (
        "ExecStart=/opt/bin/etcd-pki-first-ca https://etcd-k8s-1:9000 https://etcd-k8s-2:9000 -- "
        "/opt/bin/step ca renew --force --ca-url @CA@ " in service
    )


class _Host:
    def __init__(self, name: str, up: bool) -> None:
        self.name, self.up, self.connected = name, up, False

    def connect(self, reason: str, raise_exceptions: bool) -> None:
        if not self.up:
            raise ConnectionError(f"{self.name} does not answer")
        self.connected = True


class _State:
    def __init__(self, hosts: dict[str, _Host]) -> None:
        self.hosts = hosts
        self.inventory = self

    def get_host(self, name: str) -> _Host:
        return self.hosts[name]


def test_tokens_and_ca_material_come_from_the_first_cert_manager_that_answers() -> None:
    from etcd_step_pki.operations.tokens import Authority, reached_name

    authority = Authority("https://etcd-k8s-1:9000", "etcd-k8s-1", others=("etcd-k8s-2",))
    down = _State(
        {"etcd-k8s-1": _Host("etcd-k8s-1", False), "etcd-k8s-2": _Host("etcd-k8s-2", True)}
    )
    assert reached_name(down, authority, "to mint") == "etcd-k8s-2"  # type: ignore[arg-type]
    both = _State(
        {"etcd-k8s-1": _Host("etcd-k8s-1", False), "etcd-k8s-2": _Host("etcd-k8s-2", False)}
    )
    with pytest.raises(RuntimeError, match="etcd-k8s-1 does not answer; etcd-k8s-2: etcd-k8s-2"):
        reached_name(both, authority, "to mint")  # type: ignore[arg-type]
    # The standby layout has no other: the first is named, its connection's error says more.
    standby = Authority("https://etcd-k8s-1:9000", "etcd-k8s-1")
    assert reached_name(both, standby, "to mint") == "etcd-k8s-1"  # type: ignore[arg-type]
    # Minting on another: its own URL, where the URL named the first.
    assert authority.at("etcd-k8s-2").url == "https://etcd-k8s-2:9000"
    named = Authority("https://ca.example:9000", "etcd-k8s-1", others=("etcd-k8s-2",))
    assert named.at("etcd-k8s-2").url == "https://ca.example:9000"


def test_the_records_every_ca_shares_are_read_from_a_galera_node() -> None:
    import datetime

    from cryptography import x509 as x
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from etcd_step_pki.facts.ca_records import GaleraRecords
    from etcd_step_pki.facts.sections import MARK

    key = ec.generate_private_key(ec.SECP256R1())
    name = x.Name([x.NameAttribute(NameOID.COMMON_NAME, "client-1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(4242).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    output = [
        f"{MARK}issued",
        cert.public_bytes(Encoding.DER).hex().upper(),
        f"{MARK}revoked",
        "17",
    ]
    found = GaleraRecords().process(output)
    assert found is not None
    assert [c["serial"] for c in found["issued"]] == [4242] and found["revoked"] == {17}
    assert GaleraRecords().process([]) is None


class _Node:
    """A Galera node as Remote gives it: what its recovery run prints."""

    def __init__(self, position: str | None) -> None:
        self.position, self.ran = position, 0

    def run(self, command: object) -> tuple[bool, object]:
        from types import SimpleNamespace

        self.ran += 1
        return self.position is not None, SimpleNamespace(stdout=self.position or "")


def _grastate(seqno: str, safe: str = "0") -> dict:
    return {"grastate": {"uuid": "6c3e-1", "seqno": seqno, "safe_to_bootstrap": safe}}


def test_a_cold_start_begins_at_the_most_advanced_node() -> None:
    from etcd_step_pki.operations.galera import _most_advanced

    # A clean stop of every node: Galera marked the last one safe to start from.
    nodes = {"etcd-k8s-1": _Node(None), "etcd-k8s-2": _Node(None)}
    found = {"etcd-k8s-1": _grastate("40"), "etcd-k8s-2": _grastate("41", safe="1")}
    assert _most_advanced(nodes, found) == ("etcd-k8s-2", "the last node to stop")  # type: ignore[arg-type]
    # A crash of every node: positions read by recovery runs where the file says -1.
    nodes = {"etcd-k8s-1": _Node("6c3e-1:57\n"), "etcd-k8s-2": _Node("6c3e-1:56\n")}
    found = {"etcd-k8s-1": _grastate("-1"), "etcd-k8s-2": _grastate("-1")}
    assert _most_advanced(nodes, found) == ("etcd-k8s-1", "the highest position, 57")  # type: ignore[arg-type]
    nodes = {"etcd-k8s-1": _Node("6c3e-1:57"), "etcd-k8s-2": _Node("6c3e-1:56")}
    found = {"etcd-k8s-1": _grastate("-1"), "etcd-k8s-2": _grastate("58")}
    assert _most_advanced(nodes, found)[0] == "etcd-k8s-2"  # type: ignore[arg-type]
    assert nodes["etcd-k8s-2"].ran == 0
    # A position that cannot be read: no guess.
    nodes = {"etcd-k8s-1": _Node(None), "etcd-k8s-2": _Node("6c3e-1:56")}
    chosen, why = _most_advanced(nodes, found | {"etcd-k8s-2": _grastate("-1")})  # type: ignore[arg-type]
    assert chosen is None and why == "the position of etcd-k8s-1 cannot be read"
