"""cfssl migration pieces: trust files, legacy file names, the configuration's TLS files."""

from __future__ import annotations

from pyinfra.api import Inventory

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.components.migration import legacy_files, legacy_tls
from etcd_step_pki.deploys.settings import settings_for
from etcd_step_pki.facts.trust import TrustFiles
from etcd_step_pki.operations.etcd.configuration import member_config

MARK = "### etcd-step-pki "


def _settings(name: str = "etcd-k8s-1"):
    inventory = Inventory(
        ([("etcd-k8s-1", {"ssh_hostname": "10.0.0.1"}), ("client-1", {"ssh_hostname": "10.0.0.9"})],
         {}),
        etcd=(["etcd-k8s-1"], {}), etcd_cert_managers=(["etcd-k8s-1"], {}),
        etcd_clients=(["client-1"], {}),
    )  # fmt: skip
    return settings_for(inventory.get_host(name), inventory)


def test_trust_files_fact_tells_links_bundles_and_missing() -> None:
    fact = TrustFiles().process([
        f"{MARK}link /s/peer-ca.crt", "root_ca.crt",
        f"{MARK}pem /s/client-ca.crt", "-----BEGIN CERTIFICATE-----", "A", "-----END CERTIFICATE-----",
        f"{MARK}missing /s/peer-ca.pem",
    ])  # fmt: skip
    assert fact["/s/peer-ca.crt"] == {"link": "root_ca.crt"}
    assert fact["/s/client-ca.crt"]["pem"].startswith("-----BEGIN CERTIFICATE-----\nA\n")
    assert fact["/s/peer-ca.pem"] is None


def test_legacy_layout_and_configuration() -> None:
    settings = _settings()
    assert legacy_files(settings) == [
        "/etc/etcd/ssl/peer-ca.pem",
        "/etc/etcd/ssl/client-ca.pem",
        "/etc/etcd/ssl/etcd-k8s-1-peer.pem",
        "/etc/etcd/ssl/etcd-k8s-1-peer-key.pem",
        "/etc/etcd/ssl/etcd-k8s-1-server.pem",
        "/etc/etcd/ssl/etcd-k8s-1-server-key.pem",
        "/etc/etcd/ssl/etcd-k8s-1-client.pem",
        "/etc/etcd/ssl/etcd-k8s-1-client-key.pem",
    ]
    assert legacy_files(_settings("client-1"))[2:] == [
        "/etc/etcd/ssl/client-1-client.pem",
        "/etc/etcd/ssl/client-1-client-key.pem",
    ]
    member = arguments.member(settings)
    legacy = member_config(
        member,
        arguments.member_options(settings, legacy_tls(settings)),
        "etcd-k8s-1=https://10.0.0.1:2380",
        "new",
    )
    assert "ETCD_CERT_FILE=/etc/etcd/ssl/etcd-k8s-1-server.pem" in legacy
    assert "ETCD_PEER_KEY_FILE=/etc/etcd/ssl/etcd-k8s-1-peer-key.pem" in legacy
    assert "ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/ssl/peer-ca.crt" in legacy
    standard = member_config(
        member, arguments.member_options(settings, arguments.standard_tls(settings)), "x", "new"
    )
    assert standard == member_config(member, arguments.member_options(settings), "x", "new")
    assert "ETCD_CERT_FILE=/etc/etcd/ssl/etcd-k8s-1-server.crt" in standard
    # The CA's revocation list, once the member holds certificates of step-ca only.
    assert "ETCD_CLIENT_CRL_FILE=/etc/etcd/ssl/ca.crl" in standard
    assert "CRL_FILE" not in legacy
