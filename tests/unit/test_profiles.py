"""Certificate profiles: the CA's templates give each kind its usages (and peers their common
name), ca.json gets a provisioner per profile, and a certificate that differs is reissued."""

from __future__ import annotations

import datetime as dt
import json
import re

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcd_step_pki.operations import ca, profiles
from etcd_step_pki.operations.ca import Durations

NOW = dt.datetime.now(dt.UTC)


def _as_step_ca_renders(template: str, *, common_name: str, sans: list[str], rsa: bool) -> dict:
    """The template with its Go actions done the way step-ca does them, parsed as JSON."""
    text = template.replace("{{ toJson .Subject }}", json.dumps({"commonName": common_name}))
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
    kinds = {k: profiles.profile(k, base="etcd-pki", cluster="k8s") for k in profiles.USAGES}
    assert kinds["client"].provisioner == "etcd-pki-client"
    assert kinds["peer"].provisioner == "etcd-pki-k8s-peer"
    client = _as_step_ca_renders(profiles.template(kinds["client"]), common_name="client-1",
                                 sans=["client-1"], rsa=False)  # fmt: skip
    assert client == {"subject": {"commonName": "client-1"}, "sans": ["client-1"],
                      "keyUsage": ["digitalSignature"], "extKeyUsage": ["clientAuth"]}  # fmt: skip
    peer = _as_step_ca_renders(profiles.template(kinds["peer"]), common_name="etcd-k8s-1",
                               sans=["etcd-k8s-1", "10.0.0.1"], rsa=True)  # fmt: skip
    # Whatever the token's subject, every peer of the cluster has the same common name.
    assert peer["subject"] == {"commonName": "etcd-k8s-peer"}
    assert peer["keyUsage"] == ["keyEncipherment", "digitalSignature"]
    assert peer["extKeyUsage"] == ["serverAuth", "clientAuth"]
    other = profiles.profile("peer", base="etcd-pki", cluster="events")
    assert other.common_name == "etcd-events-peer" != kinds["peer"].common_name


def test_ca_json_gets_a_provisioner_per_profile_with_the_base_key() -> None:
    base = {"type": "JWK", "name": "etcd-pki", "key": {"kid": "k1"}, "encryptedKey": "e"}
    current = {"authority": {"provisioners": [base]}}
    items = [profiles.profile(k, base="etcd-pki", cluster="k8s") for k in profiles.USAGES]
    args = {"path": "/etc/step-ca", "dns_names": ["ca"], "port": 9000, "db_type": "bbolt",
            "durations": Durations("17520h", "26280h", "1h")}  # fmt: skip
    wanted = ca.desired_config(current, provisioner="etcd-pki", profiles=items, **args)
    entries = wanted["authority"]["provisioners"]
    assert [e["name"] for e in entries] == ["etcd-pki", "etcd-pki-k8s-peer", "etcd-pki-server",
                                            "etcd-pki-client"]  # fmt: skip
    for entry in entries[1:]:
        assert entry["key"] == {"kid": "k1"} and entry["encryptedKey"] == "e"
        # The token minting finds a provisioner's key by the "name" line before it.
        assert list(entry).index("name") < list(entry).index("encryptedKey")
    # Converged: the same again changes nothing.
    assert ca.desired_config(wanted, provisioner="etcd-pki", profiles=items, **args) == wanted


def _certificate(common_name: str, usages: list) -> str:
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
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_a_certificate_that_differs_from_its_profile_is_named_so() -> None:
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    client = profiles.profile("client", base="p", cluster="k8s")
    peer = profiles.profile("peer", base="p", cluster="k8s")
    assert profiles.mismatch(_certificate("client-1", [both[1]]), client) is None
    assert profiles.mismatch(_certificate("client-1", both), client) == (
        "its key usages are clientAuth, serverAuth, not clientAuth"
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
    tls = TLSFiles("/p.crt", "/p.key", "/s.crt", "/s.key", "/pt", "/ct", "etcd-k8s-peer")
    text = member_config(me, MemberOptions("t", tls), "etcd-k8s-1=https://10.0.0.1:2380", "new")
    # One name: etcd reads it as one (before 3.5.15) or as a list of one (from 3.5.15 on).
    assert "ETCD_PEER_CERT_ALLOWED_CN=etcd-k8s-peer" in text.splitlines()
    unchecked = MemberOptions("t", TLSFiles("/p.crt", "/p.key", "/s.crt", "/s.key", "/pt", "/ct"))
    assert "ALLOWED_CN" not in member_config(me, unchecked, "x", "new")
