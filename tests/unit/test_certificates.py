"""When a node certificate is (re)issued, and what the facts read from a node."""

from __future__ import annotations

import datetime as dt
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from etcd_step_pki.facts.certificates import NodeCertificates, parse_certificate
from etcd_step_pki.operations.certificates import past_renewal_point, reissue_reason
from etcd_step_pki.operations.roots import root_fingerprint

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
SANS = ("etcd-k8s-1", "etcd-k8s-1.sandbox.test", "10.0.0.1", "localhost", "127.0.0.1")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ca(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(issuer, sans=SANS, days_used=1, days_total=730):
    ca_cert, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.IPAddress(ipaddress.ip_address(s)) if s[0].isdigit() else x509.DNSName(s) for s in sans
    ]
    start = NOW - dt.timedelta(days=days_used)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-k8s-1")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days_total))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"cert": parse_certificate(_pem(cert), now=NOW.timestamp()),
            "key_public": public.hex(), "modes": {}}  # fmt: skip


@pytest.fixture(scope="module")
def intermediate():
    return _ca("Intermediate CA")


def _reason(entry, intermediate, expires_in=None):
    return reissue_reason(
        entry, sans=SANS, intermediate_pem=_pem(intermediate[0]), expires_in=expires_in,
        now=NOW.timestamp(),
    )  # fmt: skip


def test_a_good_certificate_is_kept(intermediate) -> None:
    assert _reason(_leaf(intermediate), intermediate) is None


def test_reasons_to_reissue(intermediate) -> None:
    assert _reason(None, intermediate) == "missing"
    assert _reason({"cert": None, "key_public": None, "modes": {}}, intermediate) == "missing"
    entry = _leaf(intermediate)
    assert _reason({**entry, "key_public": None}, intermediate).startswith("its key is missing")
    other = _leaf(intermediate)
    assert _reason({**entry, "key_public": other["key_public"]}, intermediate) == (
        "it does not match its key"
    )
    foreign = _leaf(_ca("Old cfssl CA"))
    assert "issued by another CA (Old cfssl CA)" in _reason(foreign, intermediate)
    short = _leaf(intermediate, sans=SANS[:-1])
    assert _reason(short, intermediate) == "it lacks SAN 127.0.0.1"
    # A name the host claimed (an earlier release took its own FQDN): issued again without.
    claimed = _leaf(intermediate, sans=(*SANS, "etcd-k8s-2"))
    assert _reason(claimed, intermediate) == (
        "it names etcd-k8s-2, which the inventory does not give this host"
    )
    old = _leaf(intermediate, days_used=490)
    assert _reason(old, intermediate) == "it is past its renewal point"


@pytest.mark.parametrize(
    ("used", "expires_in", "due"),
    [
        (481, None, False),  # 65.9% of 730 days
        (482, None, True),  # 66.0%
        (100, "10%", True),
        (50, "10%", False),
        (699, "720h", False),  # 31 days left
        (700, "720h", True),  # 30 days left
    ],
)
def test_renewal_point_follows_step_needs_renewal(intermediate, used, expires_in, due) -> None:
    cert = _leaf(intermediate, days_used=used)["cert"]
    assert past_renewal_point(cert, expires_in, NOW.timestamp()) is due


def test_root_fingerprint_is_the_sha256_of_the_der() -> None:
    cert, _ = _ca("Root")
    import hashlib

    der = cert.public_bytes(serialization.Encoding.DER)
    assert root_fingerprint(_pem(cert)) == hashlib.sha256(der).hexdigest()


def test_node_fact_reads_certificates_trust_and_modes(intermediate) -> None:
    leaf = _leaf(intermediate)
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pub = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    crt, keyfile = "/etc/etcd/ssl/etcd-k8s-1-peer.crt", "/etc/etcd/ssl/etcd-k8s-1-peer.key"
    mark = "### etcd-step-pki "
    output = [
        f"{mark}defaults",
        '{"ca-url": "https://ca:9000", "fingerprint": "ab"}',
        f"{mark}step-root",
        f"{mark}ssl-root",
        f"{mark}links",
        "peer-ca.crt root_ca.crt",
        "client-ca.crt ",
        f"{mark}cert {crt}",
        *leaf["cert"]["pem"].splitlines(),
        f"{mark}modes {crt}",
        f"644 etcd etcd {crt}",
        f"400 etcd etcd {keyfile}",
        f"{mark}pub {crt}",
        *pub.decode().splitlines(),
    ]
    fact = NodeCertificates().process(output)
    assert fact["trust"]["defaults"]["ca-url"] == "https://ca:9000"
    assert fact["trust"]["links"] == {"peer-ca.crt": "root_ca.crt", "client-ca.crt": None}
    assert fact["trust"]["ssl_root"] is None
    entry = fact["files"][crt]
    assert entry["cert"]["subject"] == "etcd-k8s-1"
    assert sorted(entry["cert"]["sans"]) == sorted(SANS)
    assert entry["modes"][keyfile] == {"mode": "400", "user": "etcd", "group": "etcd"}
    assert entry["key_public"] != entry["cert"]["public_key"]  # another key: a mismatch
    command = NodeCertificates().command("/etc/etcd/ssl", "/etc/step", [(crt, keyfile)])
    assert "openssl pkey -in" in command.get_raw_value()
    assert 'cat "$2"' not in command.get_raw_value()  # never the key itself


def test_a_certificate_started_before_the_revocation_time_is_issued_again() -> None:
    from etcd_step_pki.operations.certificates import _issued_before

    entry = {"cert": {"not_before": 1000.0}}
    assert _issued_before(entry, 1061.0) == "issued before the revocation time"
    # step-ca backdates by a minute: one issued at the time itself is new.
    assert _issued_before(entry, 1060.0) is None
    assert _issued_before(entry, None) is None and _issued_before(None, 5000.0) is None
