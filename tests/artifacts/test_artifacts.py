"""Upstream's step, step-ca and etcd as the harness provides them, and what the deploys need
of step and step-ca.

The archives made by tests/hosts/upstream-release.sh (built from upstream's modules, or
downloaded and checked) are checked and unpacked the way the deploys do it, then the static
binaries run directly on this machine: a CA is initialised with `step ca init`, served by
`step-ca` on 127.0.0.1, and certificates are issued, inspected, verified and renewed with
exactly the commands and flags the deploys use.
"""

import datetime
import hashlib
import json
import os
import pathlib
import shutil
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.harness.artifacts import VERSIONS, go_binary
from tests.harness.local_step import (
    CA_TGZ,
    STEP_TGZ,
    clean_env,
    initialised_ca,
    run,
    serving,
    step,
)

pytestmark = pytest.mark.artifacts

STEP_VERSION = VERSIONS["step"]
CA_VERSION = VERSIONS["step-ca"]


# --- helpers and fixtures ---------------------------------------------------


def read_chain(path):
    return x509.load_pem_x509_certificates(pathlib.Path(path).read_bytes())


def sans(cert):
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = ext.get_values_for_type(x509.DNSName) + ext.get_values_for_type(x509.IPAddress)
    return {str(n) for n in names}


@pytest.fixture(scope="module")
def ca(release, tmp_path_factory):
    """A CA made by `step ca init`, patched to bbolt and served by step-ca."""
    made = initialised_ca(release, tmp_path_factory.mktemp("pki"), "admin")
    with serving(release, made) as health:
        made.health = health
        yield made


@pytest.fixture(scope="module")
def node(release, ca):
    """A second $STEPPATH bootstrapped from the CA with its fingerprint."""
    steppath = ca.base / "node"
    env = clean_env(STEPPATH=str(steppath), HOME=str(ca.base))
    fp = step(release, env, "certificate", "fingerprint", ca.root).stdout.strip()
    step(release, env, "ca", "bootstrap", "--ca-url", ca.url, "--fingerprint", fp)
    return types.SimpleNamespace(steppath=steppath, env=env, fingerprint=fp)


def token(release, ca, subject, *args):
    """A one-time token minted on the CA side, as the deploys do."""
    return step(
        release, ca.env, "ca", "token", subject,
        "--provisioner", "admin", "--provisioner-password-file", ca.ppw, *args,
    ).stdout.strip()  # fmt: skip


def issue(release, ca, node, name, tmp, *, cert_args=()):
    """Token on the CA, then `step ca certificate` on the node with STEP_TOKEN."""
    tok = token(release, ca, name, "--san", name, "--san", "127.0.0.1")
    crt, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    step(release, dict(node.env, STEP_TOKEN=tok), "ca", "certificate", name, crt, key, *cert_args)
    return crt, key


# --- archives and binaries -------------------------------------------------


def test_archive_layout_matches_upstream(release):
    assert release.members[STEP_TGZ] == [
        f"step_{STEP_VERSION}/LICENSE",
        f"step_{STEP_VERSION}/README.md",
        f"step_{STEP_VERSION}/autocomplete/README.md",
        f"step_{STEP_VERSION}/autocomplete/bash_autocomplete",
        f"step_{STEP_VERSION}/autocomplete/zsh_autocomplete",
        f"step_{STEP_VERSION}/bin/step",
    ]
    assert release.members[CA_TGZ] == ["LICENSE", "README.md", "step-ca"]
    assert "Apache License" in (release.step_ca.parent / "LICENSE").read_text()


def is_static_amd64(path: pathlib.Path) -> bool:
    """An x86-64 ELF executable without a program interpreter (statically linked)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or int.from_bytes(data[18:20], "little") != 62:
        return False
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    kinds = [int.from_bytes(data[phoff + i * phentsize :][:4], "little") for i in range(phnum)]
    return 3 not in kinds and os.access(path, os.X_OK)  # 3: PT_INTERP


@pytest.mark.parametrize("binary", ["step", "step_ca"])
def test_binaries_are_static_amd64(release, binary):
    assert is_static_amd64(getattr(release, binary))


def build_info(path: pathlib.Path) -> dict[str, str]:
    """`go version -m`: the main module and its version, and the build settings."""
    out = run([str(go_binary()), "version", "-m", str(path)], os.environ).stdout
    info = {}
    for line in out.splitlines()[1:]:
        fields = line.split("\t")[1:]
        if fields[0] in ("path", "mod"):
            info[fields[0]] = " ".join(fields[1:3])
        elif fields[0] == "build":
            key, _, value = fields[1].partition("=")
            info[key] = value
    return info


@pytest.mark.skipif(go_binary() is None, reason="no Go: the archives were downloaded")
@pytest.mark.parametrize(
    ("binary", "main", "module"),
    [
        ("step", "github.com/smallstep/cli/cmd/step", f"github.com/smallstep/cli v{STEP_VERSION}"),
        (
            "step_ca",
            "github.com/smallstep/certificates/cmd/step-ca",
            f"github.com/smallstep/certificates v{CA_VERSION}",
        ),
    ],
)
def test_binaries_are_upstreams_module_unmodified(release, binary, main, module):
    """Built from upstream's published module at the pinned version: not a local copy (a
    replaced or local module shows as `(devel)` or with `=>`), static and -trimpath."""
    info = build_info(getattr(release, binary))
    assert info["path"] == main
    assert info["mod"] == module
    # (-trimpath leaves -ldflags out of the build info: test_versions shows the stamp.)
    assert info["CGO_ENABLED"] == "0" and info["-trimpath"] == "true"


def test_versions(release, tmp_path):
    """What upstream's release builds print: the version and goreleaser's release date."""
    env = clean_env(STEPPATH=str(tmp_path), HOME=str(tmp_path))
    out = step(release, env, "version").stdout.splitlines()
    assert out[0] == f"Smallstep CLI/{STEP_VERSION} (linux/amd64)"
    assert datetime.datetime.fromisoformat(out[1].removeprefix("Release Date: "))
    for args in (["version"], ["--version"]):
        out = run([release.step_ca, *args], env).stdout.splitlines()
        assert out[0] == f"Smallstep CA/{CA_VERSION} (linux/amd64)"
        assert datetime.datetime.fromisoformat(out[1].removeprefix("Release Date: "))


# --- step ca init / step-ca ------------------------------------------------


def test_ca_init_writes_upstream_layout(ca):
    for rel in (
        "config/ca.json",
        "config/defaults.json",
        "certs/root_ca.crt",
        "certs/intermediate_ca.crt",
        "secrets/root_ca_key",
        "secrets/intermediate_ca_key",
    ):
        assert (ca.steppath / rel).is_file(), rel
    assert (ca.steppath / "db").is_dir()
    for key in ("root_ca_key", "intermediate_ca_key"):
        assert "ENCRYPTED" in (ca.steppath / "secrets" / key).read_text()
    # As upstream: badgerv2 in $STEPPATH/db (the deploys switch it to bbolt).
    assert ca.original_config["db"]["type"] == "badgerv2"
    assert ca.original_config["db"]["dataSource"] == str(ca.steppath / "db")
    prov = ca.original_config["authority"]["provisioners"][0]
    assert (prov["type"], prov["name"]) == ("JWK", "admin")
    assert prov["encryptedKey"].count(".") == 4  # a compact JWE
    defaults = json.loads((ca.steppath / "config" / "defaults.json").read_text())
    assert defaults["ca-url"] == f"https://localhost:{ca.port}"
    assert defaults["root"] == str(ca.root)
    for path in (ca.root, ca.intermediate):
        cert = read_chain(path)[0]
        years = (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365
        assert 9.9 < years < 10.1, path


def test_health(ca):
    assert ca.health.stdout == "ok\n"


def test_bootstrap_writes_root_and_defaults(release, ca, node):
    assert (node.steppath / "certs" / "root_ca.crt").read_bytes() == ca.root.read_bytes()
    defaults = json.loads((node.steppath / "config" / "defaults.json").read_text())
    assert defaults == {
        "ca-url": ca.url,
        "fingerprint": node.fingerprint,
        "root": str(node.steppath / "certs" / "root_ca.crt"),
    }
    # defaults.json now supplies --ca-url and --root.
    assert step(release, node.env, "ca", "health").stdout == "ok\n"


def test_bootstrap_rejects_a_wrong_fingerprint(release, ca, tmp_path):
    env = clean_env(STEPPATH=str(tmp_path / "x"), HOME=str(tmp_path))
    args = ("ca", "bootstrap", "--ca-url", ca.url, "--fingerprint", "00" * 32)
    assert step(release, env, *args, check=False).returncode != 0
    assert not (tmp_path / "x" / "certs" / "root_ca.crt").exists()


def test_flag_env_and_defaults_precedence(release, ca, node):
    dead = dict(node.env, STEP_CA_URL="https://127.0.0.1:1")
    # The environment beats defaults.json ...
    assert step(release, dead, "ca", "health", check=False).returncode != 0
    # ... and the command line beats the environment.
    assert step(release, dead, "ca", "health", "--ca-url", ca.url).stdout == "ok\n"


def test_roots(release, ca, node, tmp_path):
    out = step(release, node.env, "ca", "roots").stdout
    assert x509.load_pem_x509_certificates(out.encode()) == read_chain(ca.root)
    step(release, node.env, "ca", "roots", tmp_path / "roots.pem")
    assert read_chain(tmp_path / "roots.pem") == read_chain(ca.root)


def test_fingerprint_is_the_root_sha256(ca, node):
    der = read_chain(ca.root)[0].public_bytes(Encoding.DER)
    assert node.fingerprint == hashlib.sha256(der).hexdigest()


# --- issuing ---------------------------------------------------------------


def test_certificate_with_step_token_env(release, ca, node, tmp_path):
    crt, key = issue(release, ca, node, "etcd-a.example", tmp_path, cert_args=("--not-after", "5m"))
    chain = read_chain(crt)
    assert len(chain) == 2  # leaf + intermediate, as upstream
    assert chain[1] == read_chain(ca.intermediate)[0]
    leaf = chain[0]
    assert leaf.subject.rfc4514_string() == "CN=etcd-a.example"
    assert sans(leaf) == {"etcd-a.example", "127.0.0.1"}
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert datetime.timedelta(minutes=5) <= lifetime <= datetime.timedelta(minutes=6, seconds=5)
    assert key.stat().st_mode & 0o777 == 0o600
    assert "BEGIN EC PRIVATE KEY" in key.read_text()  # EC P-256 by default
    assert "ENCRYPTED" not in key.read_text()


def test_certificate_with_token_flag_after_positionals(release, ca, node, tmp_path):
    tok = token(release, ca, "etcd-b.example")
    crt, key = tmp_path / "b.crt", tmp_path / "b.key"
    step(
        release, node.env, "ca", "certificate", "etcd-b.example", crt, key,
        "--token", tok, "--kty", "RSA", "--size", "2048",
    )  # fmt: skip
    leaf = read_chain(crt)[0]
    assert sans(leaf) == {"etcd-b.example"}  # without --san the subject is the only SAN
    assert leaf.public_key().key_size == 2048


def test_token_reuse_is_refused(release, ca, node, tmp_path):
    env = dict(node.env, STEP_TOKEN=token(release, ca, "etcd-c.example"))
    certificate = ("ca", "certificate", "etcd-c.example")
    step(release, env, *certificate, tmp_path / "1.crt", tmp_path / "1.key")
    args = (*certificate, tmp_path / "2.crt", tmp_path / "2.key")
    assert step(release, env, *args, check=False).returncode != 0
    assert not (tmp_path / "2.crt").exists()


def test_token_output_file(release, ca, tmp_path):
    out = tmp_path / "token"
    proc = token(release, ca, "x.example", "--output-file", out)
    assert proc == ""
    assert out.read_text().count(".") == 2  # a compact JWS
    assert out.stat().st_mode & 0o777 == 0o600


def test_existing_files_need_force(release, ca, node, tmp_path):
    crt, key = issue(release, ca, node, "etcd-d.example", tmp_path)
    env = dict(node.env, STEP_TOKEN=token(release, ca, "etcd-d.example"))
    # Upstream asks before overwriting; without a terminal that fails.
    args = ("ca", "certificate", "etcd-d.example", crt, key)
    assert step(release, env, *args, check=False).returncode != 0
    env = dict(node.env, STEP_TOKEN=token(release, ca, "etcd-d.example"))
    step(release, env, *args, "--force")


# --- inspecting and verifying ------------------------------------------------


def test_inspect_json(release, ca, node, tmp_path):
    crt, _ = issue(release, ca, node, "etcd-e.example", tmp_path)
    leaf = read_chain(crt)[0]
    inspect = ("certificate", "inspect", crt, "--format", "json")
    data = json.loads(step(release, node.env, *inspect).stdout)
    assert data["serial_number"] == str(leaf.serial_number)
    assert data["subject"]["common_name"] == ["etcd-e.example"]
    assert data["issuer"]["common_name"] == ["Test CA Intermediate CA"]
    assert data["extensions"]["subject_alt_name"]["dns_names"] == ["etcd-e.example"]
    assert data["extensions"]["subject_alt_name"]["ip_addresses"] == ["127.0.0.1"]
    start = datetime.datetime.fromisoformat(data["validity"]["start"])
    end = datetime.datetime.fromisoformat(data["validity"]["end"])
    assert (start, end) == (leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    bundle = json.loads(step(release, node.env, *inspect, "--bundle").stdout)
    assert isinstance(bundle, list) and len(bundle) == 2
    text = step(release, node.env, "certificate", "inspect", crt, "--short").stdout
    assert "etcd-e.example" in text and "Test CA Intermediate CA" in text


def test_verify(release, ca, node, tmp_path):
    crt, _ = issue(release, ca, node, "etcd-f.example", tmp_path)
    verify = ("certificate", "verify", crt, "--roots", ca.root)
    step(release, node.env, *verify, "--host", "etcd-f.example")
    assert step(release, node.env, *verify, "--host", "other.example", check=False).returncode != 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_verifies_the_chain(release, ca, node, tmp_path):
    crt, _ = issue(release, ca, node, "etcd-g.example", tmp_path)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(read_chain(crt)[0].public_bytes(Encoding.PEM))
    cmd = ["openssl", "verify", "-CAfile", ca.root, "-untrusted", ca.intermediate, leaf]
    assert run(cmd, node.env).stdout.strip() == f"{leaf}: OK"


# --- renewal -----------------------------------------------------------------


def test_renew_force_gives_a_new_serial(release, ca, node, tmp_path):
    crt, key = issue(release, ca, node, "etcd-h.example", tmp_path)
    before = read_chain(crt)[0]
    step(release, node.env, "ca", "renew", crt, key, "--force")
    after = read_chain(crt)
    assert len(after) == 2
    assert after[0].serial_number != before.serial_number
    assert sans(after[0]) == sans(before)
    assert after[0].public_key() == before.public_key()  # renew keeps the key


def test_renew_expires_in_renews_only_when_due(release, ca, node, tmp_path):
    crt, key = issue(release, ca, node, "etcd-i.example", tmp_path, cert_args=("--not-after", "2h"))
    before = crt.read_bytes()
    renew = ("ca", "renew", crt, key, "--force")
    proc = step(release, node.env, *renew, "--expires-in", "10m")
    assert "certificate not renewed" in proc.stderr
    assert crt.read_bytes() == before
    marker = tmp_path / "renewed"
    step(release, node.env, *renew, "--expires-in", "2h", "--exec", f"touch {marker}")
    assert crt.read_bytes() != before
    assert marker.exists()


def test_needs_renewal_exit_codes(release, ca, node, tmp_path):
    crt, _ = issue(release, ca, node, "etcd-j.example", tmp_path, cert_args=("--not-after", "5m"))

    def code(*args):
        needs_renewal = ("certificate", "needs-renewal", *args)
        return step(release, node.env, *needs_renewal, check=False).returncode

    assert code(crt, "--expires-in", "10m") == 0  # expires within 10m: renew
    assert code(crt, "--expires-in", "1m") == 1  # not yet
    assert code(crt) == 1  # default threshold: 66% of the lifetime
    assert code(crt, "--expires-in", "0%") == 0
    assert code(tmp_path / "missing.crt") == 2
    assert code(crt, "--expires-in", "soon") == 255


def test_a_token_signed_with_the_decrypted_provisioner_key(release, ca, node, tmp_path):
    """`crypto jwe decrypt` once, then `ca token --key`: what the deploys do per batch."""
    config = json.loads((ca.steppath / "config" / "ca.json").read_text())
    (provisioner,) = config["authority"]["provisioners"]
    jwe = provisioner["encryptedKey"]
    key = tmp_path / "provisioner.json"
    decrypt = ("crypto", "jwe", "decrypt", "--password-file")
    key.write_text(step(release, ca.env, *decrypt, ca.ppw, input=jwe).stdout)
    assert json.loads(key.read_text())["kid"] == provisioner["key"]["kid"]
    wrong = step(release, ca.env, *decrypt, ca.root, check=False, input=jwe)
    # Upstream's step names no cause, only that decrypting failed (and prints no key).
    assert wrong.returncode != 0 and wrong.stdout == ""
    assert wrong.stderr.startswith("error decrypting data")
    tok = step(
        release, ca.env, "ca", "token", "etcd-k.example", "--san", "etcd-k.example",
        "--provisioner", "admin", "--key", key, "--ca-url", ca.url, "--root", ca.root,
    ).stdout.strip()  # fmt: skip
    crt, key_file = tmp_path / "k.crt", tmp_path / "k.key"
    step(
        release,
        dict(node.env, STEP_TOKEN=tok),
        "ca",
        "certificate",
        "etcd-k.example",
        crt,
        key_file,
    )
    assert sans(read_chain(crt)[0]) == {"etcd-k.example"}
    # Another key is refused, with the provisioner named.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kty": "oct", "k": "c2VjcmV0"}))
    refused = step(release, ca.env, "ca", "token", "x.example", "--provisioner", "admin",
                   "--key", other, "--ca-url", ca.url, "--root", ca.root, check=False)  # fmt: skip
    assert refused.returncode != 0


def test_certificate_create_makes_an_intermediate_under_the_root(release, ca, tmp_path):
    pw = ca.base / "password"
    crt, key = tmp_path / "int.crt", tmp_path / "int.key"
    step(
        release, ca.env, "certificate", "create", "Test CA Intermediate CA", crt, key,
        "--profile", "intermediate-ca", "--ca", ca.root,
        "--ca-key", ca.steppath / "secrets" / "root_ca_key", "--ca-password-file", pw,
        "--password-file", pw, "--not-after", "2000h",
    )  # fmt: skip
    (cert,) = read_chain(crt)
    root = read_chain(ca.root)[0]
    cert.verify_directly_issued_by(root)
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca and basic.path_length == 0
    assert cert.subject.rfc4514_string() == "CN=Test CA Intermediate CA"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(hours=1999) < lifetime <= datetime.timedelta(hours=2000)
    assert "ENCRYPTED" in key.read_text()  # with the password, as step-ca expects it
    assert crt.stat().st_mode & 0o777 == 0o600 and key.stat().st_mode & 0o777 == 0o600
    # A wrong root password creates nothing.
    bad = step(
        release, ca.env, "certificate", "create", "x", tmp_path / "x.crt", tmp_path / "x.key",
        "--profile", "intermediate-ca", "--ca", ca.root,
        "--ca-key", ca.steppath / "secrets" / "root_ca_key", "--ca-password-file", ca.ppw,
        "--password-file", pw, check=False,
    )  # fmt: skip
    assert bad.returncode != 0 and not (tmp_path / "x.crt").exists()
    # --no-password needs --insecure, as upstream.
    insecure = step(release, ca.env, "certificate", "create", "r", tmp_path / "r.crt",
                    tmp_path / "r.key", "--profile", "root-ca", "--no-password", check=False)  # fmt: skip
    assert insecure.returncode != 0 and "--insecure" in insecure.stderr
