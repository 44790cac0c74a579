"""What the CA itself allows (operations/profiles.py), proven on upstream's step-ca: ca.json as
the deploys write it for two clusters, then tokens minted on the CA side as the deploys mint
them. Each cluster's provisioners issue for that cluster's names only, and add the name that
opens its client port; the base provisioner issues proof certificates only; a provisioner of
an earlier version issues nothing but still renews what it issued."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcd_step_pki.operations import ca as ca_config
from etcd_step_pki.operations import profiles
from tests.harness.local_step import certificate, initialised_ca, serving, step, token

pytestmark = pytest.mark.artifacts

BASE = "etcd-pki"
NAMES = {
    "k8s": ["etcd-k8s-1", "10.0.0.1", "client-1", "localhost", "127.0.0.1"],
    "events": ["etcd-events-1", "10.0.0.2", "localhost", "127.0.0.1"],
}


def _configure(ca: types.SimpleNamespace) -> None:
    """ca.json as deploys/components/ca.py keeps it, for both clusters."""
    items = [
        profiles.profile(k, base=BASE, cluster=c) for c in NAMES for k in profiles.CLUSTER_KINDS
    ]
    current = json.loads(ca.config.read_text())
    wanted = ca_config.desired_config(
        current, path=str(ca.steppath), dns_names=["localhost", "127.0.0.1"], port=ca.port,
        db_type="bbolt", durations=ca_config.Durations("24h", "48h", "5m"),
        provisioner=BASE, profiles=items, names=NAMES,
    )  # fmt: skip
    wanted["db"] = current["db"]
    ca.config.write_text(ca_config.render_config(wanted))


def _request(release, ca, provisioner: str, subject: str, *sans: str) -> tuple[int, str, Path]:
    """A token for `subject` and `sans` from `provisioner`, then `step ca certificate` with it:
    the exit code, the error, and where the certificate went."""
    crt = ca.base / f"{provisioner}-{subject}-{'-'.join(sans)}.crt"
    one_time = token(release, ca, provisioner, subject, *sans)
    done = certificate(release, ca, subject, one_time, crt)
    return done.returncode, done.stderr, crt


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def _dns(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)


def _usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture(scope="module")
def upgraded_ca(release, tmp_path_factory) -> Iterator[types.SimpleNamespace]:
    """A CA that issued a server certificate with the shared provisioner of earlier versions
    (no policy), then configured as the deploys configure it now and served again."""
    ca = initialised_ca(release, tmp_path_factory.mktemp("policy"), BASE)
    current = json.loads(ca.config.read_text())
    base = current["authority"]["provisioners"][0]
    old = {"type": "JWK", "name": f"{BASE}-server", "key": base["key"],
           "encryptedKey": base["encryptedKey"]}  # fmt: skip
    current["authority"]["provisioners"].append(old)
    ca.config.write_text(json.dumps(current, indent=2))
    with serving(release, ca):
        code, err, crt = _request(release, ca, f"{BASE}-server", "etcd-k8s-1", "etcd-k8s-1")
        assert code == 0, err
    ca.old_certificate = crt.rename(ca.base / "old.crt")
    crt.with_suffix(".key").rename(ca.base / "old.key")
    _configure(ca)
    with serving(release, ca):
        yield ca


def test_each_cluster_issues_for_its_own_names_and_marks_its_clients(release, upgraded_ca) -> None:
    ca = upgraded_ca
    code, err, crt = _request(
        release, ca, f"{BASE}-k8s-server", "etcd-k8s-1", "etcd-k8s-1", "10.0.0.1"
    )
    assert code == 0, err
    cert = _load(crt)
    assert _dns(cert) == ["etcd-k8s-1"]
    assert _usages(cert) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    # step-ca renews only a certificate that authenticates as a TLS client: every kind does.
    step(release, ca.env, "ca", "renew", crt, crt.with_suffix(".key"), "--force",
         "--ca-url", ca.url, "--root", ca.root)  # fmt: skip
    assert _load(crt).serial_number != cert.serial_number
    code, err, crt = _request(release, ca, f"{BASE}-k8s-client", "client-1", "client-1")
    assert code == 0, err
    assert _dns(_load(crt)) == ["client-1", "k8s.etcd-clients.invalid"]
    assert _usages(_load(crt)) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    # A peer certificate has the cluster's peer name and does not open the client port.
    code, err, crt = _request(release, ca, f"{BASE}-k8s-peer", "etcd-k8s-peer", "etcd-k8s-1")
    assert code == 0, err
    peer = _load(crt)
    assert peer.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "etcd-k8s-peer"
    assert _dns(peer) == ["etcd-k8s-1"]


@pytest.mark.parametrize(
    ("provisioner", "subject", "sans", "refusal"),
    [
        # Another cluster's member, through this cluster's provisioners.
        (f"{BASE}-k8s-server", "etcd-events-1", ["etcd-events-1"], "etcd-events-1 is not a name of cluster k8s"),
        (f"{BASE}-k8s-peer", "etcd-k8s-peer", ["etcd-events-1"], "etcd-events-1 is not a name of cluster k8s"),
        # A name of no cluster (the CA's own), as a SAN or as the subject.
        (f"{BASE}-events-client", "etcd-events-1", ["ca.example"], "ca.example is not a name of cluster events"),
        (f"{BASE}-k8s-client", "ca.example", ["client-1"], "ca.example is not a name of cluster k8s"),
        # Asking for the name that opens a client port.
        (f"{BASE}-events-client", "etcd-events-1", ["k8s.etcd-clients.invalid"], "is not a name of cluster events"),
        # The provisioner `step ca init` made: proofs only.
        (BASE, "etcd-k8s-1", ["etcd-k8s-1"], "etcd-k8s-1 is not a name of the proof certificates"),
        (BASE, "etcd-k8s-peer", ["drill-proof"], "etcd-k8s-peer is not a name of the proof certificates"),
        # The shared provisioner of earlier versions: nothing.
        (f"{BASE}-server", "etcd-k8s-1", ["etcd-k8s-1"], "this provisioner no longer issues certificates"),
    ],
)  # fmt: skip
def test_step_ca_refuses_a_name_outside_the_policy(
    release, upgraded_ca, provisioner: str, subject: str, sans: list[str], refusal: str
) -> None:
    code, err, crt = _request(release, upgraded_ca, provisioner, subject, *sans)
    assert code != 0 and refusal in err
    assert not crt.exists()


def test_the_base_provisioner_issues_a_proof_that_opens_no_port(release, upgraded_ca) -> None:
    code, err, crt = _request(release, upgraded_ca, BASE, "drill-proof", "drill-proof")
    assert code == 0, err
    proof = _load(crt)
    assert _dns(proof) == ["drill-proof"]
    assert _usages(proof) == {ExtendedKeyUsageOID.CLIENT_AUTH}


def test_a_certificate_of_a_retired_provisioner_still_renews(release, upgraded_ca) -> None:
    ca = upgraded_ca
    before = _load(ca.old_certificate)
    key = ca.old_certificate.with_suffix(".key")
    step(release, ca.env, "ca", "renew", ca.old_certificate, key, "--force",
         "--ca-url", ca.url, "--root", ca.root)  # fmt: skip
    after = _load(ca.old_certificate)
    assert after.serial_number != before.serial_number
    assert _dns(after) == ["etcd-k8s-1"]
