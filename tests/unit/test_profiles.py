"""Certificate profiles: the CA's templates give each kind its usages (peers their common name,
clients and servers their cluster's client name) and refuse names outside the cluster; ca.json
gets a provisioner per profile, and a certificate that differs is reissued."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcd_step_pki.operations import ca, profiles
from etcd_step_pki.operations.ca import Durations

NOW = dt.datetime.now(dt.UTC)


def _as_step_ca_renders(
    item: profiles.Profile, *, common_name: str, sans: list[str], rsa: bool
) -> dict:
    """The profile's template with its Go actions done the way step-ca does them (the names
    checked against its data first), parsed as JSON."""
    data = profiles.template_data(item, ["client-1", "etcd-k8s-1", "10.0.0.1"])
    text = profiles.template(item)
    refused = [n for n in sans if n not in data["etcdPkiNames"]]
    if "has .Subject.CommonName" in text and common_name not in data["etcdPkiNames"]:
        refused.append(common_name)
    if refused:
        raise ValueError(f"{refused[0]} is not a name of {data['etcdPkiScope']}")
    text = text[text.index('{"subject"') :]
    marked = [*sans, data["etcdPkiClientMark"]] if "etcdPkiClientMark" in data else sans
    text = text.replace("{{ toJson .Subject }}", json.dumps({"commonName": common_name}))
    text = text.replace(
        "{{ toJson $.etcdPkiCommonName }}", json.dumps(data.get("etcdPkiCommonName"))
    )
    text = re.sub(r"\{\{ toJson \(append \.SANs .*?\) \}\}", json.dumps(marked), text)
    text = text.replace("{{ toJson .SANs }}", json.dumps(sans))
    branch = 1 if rsa else 2
    text = re.sub(
        r'\{\{ if typeIs "\*rsa\.PublicKey" \.Insecure\.CR\.PublicKey \}\}(.*?)'
        r"\{\{ else \}\}(.*?)\{\{ end \}\}",
        lambda m: m.group(branch),
        text,
    )
    assert "{{" not in text
    return json.loads(text)


def test_each_kind_gets_only_the_usages_it_needs() -> None:
    kinds = {k: profiles.profile(k, base="etcd-pki", cluster="k8s") for k in profiles.CLUSTER_KINDS}
    assert kinds["client"].provisioner == "etcd-pki-k8s-client"
    assert kinds["peer"].provisioner == "etcd-pki-k8s-peer"
    client = _as_step_ca_renders(kinds["client"], common_name="client-1", sans=["client-1"],
                                 rsa=False)  # fmt: skip
    # The CA adds the name that opens the cluster's client port.
    assert client == {"subject": {"commonName": "client-1"},
                      "sans": ["client-1", "k8s.etcd-clients.invalid"],
                      "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}  # fmt: skip
    peer = _as_step_ca_renders(kinds["peer"], common_name="etcd-k8s-1",
                               sans=["etcd-k8s-1", "10.0.0.1"], rsa=True)  # fmt: skip
    # Whatever the token's subject, every peer of the cluster has the same common name, and
    # no peer certificate opens a client port.
    assert peer["subject"] == {"commonName": "etcd-k8s-peer"}
    assert peer["sans"] == ["etcd-k8s-1", "10.0.0.1"]
    assert peer["keyUsage"] == ["keyEncipherment", "digitalSignature"]
    assert peer["extKeyUsage"] == ["serverAuth", "clientAuth"]
    other = profiles.profile("peer", base="etcd-pki", cluster="events")
    assert other.common_name == "etcd-events-peer" != kinds["peer"].common_name


def test_a_name_outside_the_cluster_is_refused() -> None:
    server = profiles.profile("server", base="etcd-pki", cluster="k8s")
    with pytest.raises(ValueError, match="etcd-events-1 is not a name of cluster k8s"):
        _as_step_ca_renders(server, common_name="etcd-k8s-1", sans=["etcd-events-1"], rsa=False)
    with pytest.raises(ValueError, match=r"ca\.example is not a name of cluster k8s"):
        _as_step_ca_renders(server, common_name="ca.example", sans=["etcd-k8s-1"], rsa=False)
    # Nothing from the settings is code in the template: names are the provisioner's data.
    assert "etcd-k8s" not in profiles.template(server)
    assert "k8s" not in profiles.template(profiles.profile("peer", base="p", cluster="k8s"))


def test_ca_json_gets_a_provisioner_per_profile_with_the_base_key() -> None:
    base = {"type": "JWK", "name": "etcd-pki", "key": {"kid": "k1"}, "encryptedKey": "e"}
    old = {"type": "JWK", "name": "etcd-pki-server", "key": {"kid": "k1"}, "encryptedKey": "e"}
    current = {"authority": {"provisioners": [base, old]}}
    items = [profiles.profile(k, base="etcd-pki", cluster="k8s") for k in profiles.CLUSTER_KINDS]
    args = {"path": "/etc/step-ca", "dns_names": ["ca"], "port": 9000, "db_type": "bbolt",
            "durations": Durations("17520h", "26280h", "1h"),
            "names": {"k8s": ["etcd-k8s-1", "10.0.0.1"]}}  # fmt: skip
    wanted = ca.desired_config(current, provisioner="etcd-pki", profiles=items, **args)
    entries = wanted["authority"]["provisioners"]
    assert [e["name"] for e in entries] == ["etcd-pki", "etcd-pki-server", "etcd-pki-k8s-peer",
                                            "etcd-pki-k8s-server", "etcd-pki-k8s-client"]  # fmt: skip
    for entry in entries[2:]:
        assert entry["key"] == {"kid": "k1"} and entry["encryptedKey"] == "e"
        # The token minting finds a provisioner's key by the "name" line before it.
        assert list(entry).index("name") < list(entry).index("encryptedKey")
        data = entry["options"]["x509"]["templateData"]
        assert data["etcdPkiNames"] == ["etcd-k8s-1", "10.0.0.1"]
    # The base provisioner issues proofs only; the shared one of earlier versions nothing.
    proof = entries[0]["options"]["x509"]
    assert proof["templateData"]["etcdPkiNames"] == list(profiles.PROOF_NAMES)
    assert '"extKeyUsage": ["clientAuth"]' in proof["template"]
    assert entries[1]["options"] == {"x509": {"template": profiles.RETIRED_TEMPLATE}}
    # Converged: the same again changes nothing.
    assert ca.desired_config(wanted, provisioner="etcd-pki", profiles=items, **args) == wanted


def _certificate(common_name: str, usages: list, names: tuple[str, ...] = ()) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if names:
        dns = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
        builder = builder.add_extension(dns, critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_that_differs_from_its_profile_is_named_so() -> None:
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    client = profiles.profile("client", base="p", cluster="k8s")
    peer = profiles.profile("peer", base="p", cluster="k8s")
    marked = ("client-1", "k8s.etcd-clients.invalid")
    assert profiles.mismatch(_certificate("client-1", [both[1]], marked), client) is None
    assert profiles.mismatch(_certificate("client-1", both, marked), client) == (
        "its key usages are clientAuth, serverAuth, not clientAuth"
    )
    # Issued before the cluster's client port required its name: issued again.
    assert profiles.mismatch(_certificate("client-1", [both[1]], ("client-1",)), client) == (
        "it lacks k8s.etcd-clients.invalid, the name its cluster's client port requires"
    )
    assert profiles.mismatch(_certificate("etcd-k8s-peer", both), peer) is None
    assert profiles.mismatch(_certificate("etcd-k8s-1", both), peer) == (
        "its subject is 'etcd-k8s-1', not 'etcd-k8s-peer'"
    )
    assert "none" in (profiles.mismatch(_certificate("etcd-k8s-peer", []), peer) or "")


def test_the_peer_port_names_its_peers() -> None:
    from etcd_step_pki.operations.etcd.configuration import MemberOptions, TLSFiles, member_config
    from etcd_step_pki.operations.etcd.member import Etcdctl, Member

    me = Member("etcd-k8s-1", "etcd-k8s-1", "10.0.0.1", "/d", "/c", "u",
                Etcdctl("/opt/bin/etcdctl", "/r", "/c", "/k"))  # fmt: skip
    tls = TLSFiles("/p.crt", "/p.key", "/s.crt", "/s.key", "/pt", "/ct", "etcd-k8s-peer",
                   client_allowed_hostname="k8s.etcd-clients.invalid")  # fmt: skip
    text = member_config(me, MemberOptions("t", tls), "etcd-k8s-1=https://10.0.0.1:2380", "new")
    # One name each: etcd reads it as one (3.5) or as a list of one (3.6 on).
    assert "ETCD_PEER_CERT_ALLOWED_CN=etcd-k8s-peer" in text.splitlines()
    assert "ETCD_CLIENT_CERT_ALLOWED_HOSTNAME=k8s.etcd-clients.invalid" in text.splitlines()
    unchecked = MemberOptions("t", TLSFiles("/p.crt", "/p.key", "/s.crt", "/s.key", "/pt", "/ct"))
    assert "ALLOWED" not in member_config(me, unchecked, "x", "new")
