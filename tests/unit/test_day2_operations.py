"""Intermediate rotation, batched token minting and the system account: commands for facts."""

from __future__ import annotations

import datetime as dt
import shlex

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyinfra.api import OperationError

from etcd_step_pki.facts.accounts import SystemAccount
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations.accounts import system_account
from etcd_step_pki.operations.rotation import intermediate_rotated
from etcd_step_pki.operations.tokens import Authority, TokenItem, TokenRequest, mint_command
from etcd_step_pki.operations.units import digest, systemd_units
from tests.unit.fakes import FakeHost, raw, run_op

NOW = dt.datetime(2026, 11, 28, 6, tzinfo=dt.UTC)


def _cert(name: str, start: dt.datetime, days: int, issuer=None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer or (None, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ca_host(intermediate_start: dt.datetime, root_days: int = 3650) -> FakeHost:
    root = _cert("etcd-k8s CA Root CA", NOW - dt.timedelta(days=400), root_days)
    intermediate = _cert("etcd-k8s CA Intermediate CA", intermediate_start, 3650, root)
    state = {
        "config": {},
        "root": _pem(root[0]),
        "intermediate": _pem(intermediate[0]),
        "files": {"/etc/step-ca/secrets/root_ca_key": {"type": "f", "mode": "400"}},
    }
    return FakeHost({CAState: state})


def _rotate(host: FakeHost, before: dt.datetime = NOW) -> list[str]:
    """The rotation's scripts (each run as `bash -c <script> <template>`)."""
    commands = raw(
        run_op(
            intermediate_rotated, host, path="/etc/step-ca", issued_before=before.timestamp(),
            duration="87600h", now=NOW.timestamp(),
        )
    )  # fmt: skip
    return [shlex.split(command)[2] for command in commands]


def test_an_intermediate_issued_before_the_time_is_replaced() -> None:
    (command,) = _rotate(_ca_host(NOW - dt.timedelta(days=30)))
    assert (
        "certificate create 'etcd-k8s CA Intermediate CA' certs/intermediate_ca.crt.new" in command
    )
    assert '--profile intermediate-ca --ca certs/root_ca.crt --ca-key "$root_key"' in command
    assert "root_key=secrets/root_ca_key" in command
    assert "--ca-password-file secrets/password --password-file secrets/password" in command
    # Cut to the root's end (the root started 400 days ago and lives 3650 days).
    root_end = (NOW - dt.timedelta(days=400) + dt.timedelta(days=3650)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert f"--not-after {root_end}" in command
    # The old pair is kept, the new pair moved in last.
    assert 'cp -p secrets/intermediate_ca_key "secrets/intermediate_ca_key.replaced-$s"' in command
    assert command.endswith("mv -f certs/intermediate_ca.crt.new certs/intermediate_ca.crt\n")


def test_an_intermediate_issued_after_the_time_is_kept() -> None:
    host = _ca_host(NOW + dt.timedelta(minutes=1))
    assert _rotate(host) == []
    assert host.noops and "not before 2026-11-28T06:00:00Z" in host.noops[0]


def test_no_rotation_without_a_ca_or_under_an_expired_root() -> None:
    with pytest.raises(OperationError, match="no CA"):
        run_op(intermediate_rotated, FakeHost({CAState: CAState.default()}), path="/etc/step-ca",
               issued_before=NOW.timestamp(), duration="1h", now=NOW.timestamp())  # fmt: skip
    with pytest.raises(OperationError, match="root CA at /etc/step-ca has expired"):
        _rotate(_ca_host(NOW - dt.timedelta(days=30), root_days=300))


def test_one_batch_decrypts_the_provisioner_key_once_and_passes_no_secret() -> None:
    requests = [
        TokenRequest("etcd-k8s-1", (TokenItem("peer", "etcd-k8s-peer", "etcd-pki-k8s-peer"),
                                    TokenItem("server", "etcd-k8s-1", "etcd-pki-server")),
                     ("etcd-k8s-1", "10.0.0.1"), "17520h", "https://etcd-k8s-1:9000"),
        TokenRequest("client-1", (TokenItem("client", "client-1"),), ("client-1",), "17520h",
                     "https://etcd-k8s-1:9000"),
    ]  # fmt: skip
    minted = mint_command(Authority("https://etcd-k8s-1:9000", "etcd-k8s-1"), requests)
    command = shlex.split(minted.get_raw_value())[2]  # bash -c <script> <template>
    assert command.count("crypto jwe decrypt") == 1
    assert "--password-file /etc/step-ca/secrets/provisioner_password" in command
    assert command.count(' --key "$d/key"') == 3
    assert "--provisioner-password-file" not in command
    assert (
        "printf '%s %s ' client-1 0\n    /opt/bin/step ca token client-1 --san client-1" in command
    )
    # Each token names its profile's provisioner and subject (the authority's by default).
    assert (
        "ca token etcd-k8s-peer --san etcd-k8s-1 --san 10.0.0.1 --provisioner"
        " etcd-pki-k8s-peer" in command
    )
    assert "--provisioner etcd-pki-server" in command
    assert "ca token client-1 --san client-1 --provisioner etcd-pki --key" in command
    assert "--cert-not-after 17520h\n    echo\n" in command
    assert 'rm -rf "$d"\n}\ntrap cleanup EXIT' in command and "umask 077" in command


def test_system_account_fact_and_operation() -> None:
    fact = SystemAccount()
    found = fact.process(
        ["user etcd:x:998:997::/var/lib/etcd:/usr/sbin/nologin", "group etcd:x:997:",
         "home root:root 755", "dir /var/lib/etcd/etcd-k8s-1 etcd:etcd 700"]
    )  # fmt: skip
    assert found == {
        "user": {"uid": "998", "group_id": "997", "home": "/var/lib/etcd", "shell": "/usr/sbin/nologin"},
        "group": {"gid": "997"},
        "home_owner": "root:root 755",
        "dirs": {"/var/lib/etcd/etcd-k8s-1": "etcd:etcd 700"},
    }  # fmt: skip
    data = "/var/lib/etcd/etcd-k8s-1"
    # A member's data directory, private to the user, in the same operation.
    assert run_op(system_account, FakeHost({SystemAccount: found}), "etcd",
                  home="/var/lib/etcd", private_dirs=[data]) == []  # fmt: skip
    loose = FakeHost({SystemAccount: {**found, "dirs": {data: "etcd:etcd 755"}}})
    (fix,) = run_op(system_account, loose, "etcd", home="/var/lib/etcd", private_dirs=[data])
    script = str(fix.bits[2].obj)
    assert 'chown -h root:root "$home"' in script and "private=(/var/lib/etcd/etcd-k8s-1)" in script
    # A link (or a file) where the private directory belongs: refused, nothing done.
    for what in ("link", "other"):
        swapped = FakeHost({SystemAccount: {**found, "dirs": {data: what}}})
        with pytest.raises(OperationError, match="symbolic link or no directory"):
            run_op(system_account, swapped, "etcd", home="/var/lib/etcd", private_dirs=[data])
    assert fact.process(["user", "group", "home", f"dir {data} link"])["dirs"] == {data: "link"}
    assert fact.process(["user", "group", "home"]) == SystemAccount.default()

    host = FakeHost({SystemAccount: found})
    assert run_op(system_account, host, "etcd", home="/var/lib/etcd") == []
    assert host.noops == ["system user and group etcd exist, their directories are in place"]
    missing = FakeHost({SystemAccount: SystemAccount.default()})
    made = run_op(system_account, missing, "etcd", home="/var/lib/etcd")
    assert raw(made[:2]) == [
        "groupadd --system etcd",
        "useradd --system --gid etcd --home-dir /var/lib/etcd --no-create-home"
        " --shell /usr/sbin/nologin etcd",
    ]
    assert "account-directories.sh.j2" in str(made[2])
    # An earlier release (or a package) gave the home to the account: it becomes root's.
    for owner in ("etcd:etcd 755", "etcd:etcd 700"):
        given = FakeHost({SystemAccount: {**found, "home_owner": owner}})
        assert len(run_op(system_account, given, "etcd", home="/var/lib/etcd")) == 1
    # step-ca's account: its home is its private database directory, its own.
    step = {
        **found,
        "user": {**found["user"], "home": "/etc/step-ca/db"},
        "home_owner": "step:step 700",
        "dirs": {"/etc/step-ca/db": "step:step 700"},
    }
    assert run_op(system_account, FakeHost({SystemAccount: step}), "step",
                  home="/etc/step-ca/db", private_dirs=["/etc/step-ca/db"]) == []  # fmt: skip
    moved = FakeHost({SystemAccount: {**found, "user": {**found["user"], "shell": "/bin/sh"}}})
    assert raw(run_op(system_account, moved, "etcd", home="/var/lib/etcd")) == [
        "usermod --home /var/lib/etcd --shell /usr/sbin/nologin etcd"
    ]


def _unit_host(text: str | None, active: str = "active", enabled: str = "enabled") -> FakeHost:
    files = {"x.service": digest(text) if text is not None else None}
    states = {"x.service": {"Id": "x.service", "ActiveState": active, "UnitFileState": enabled}}
    return FakeHost({Units: {"files": files, "states": states}})


def test_a_unit_kept_off_that_failed_is_put_back_to_inactive() -> None:
    failed = _unit_host("[Unit]\n", active="failed", enabled="disabled")
    assert raw(run_op(systemd_units, failed, ["x.service"], running=False, enabled=False)) == [
        "set -e; systemctl reset-failed x.service"
    ]
    off = _unit_host("[Unit]\n", active="inactive", enabled="disabled")
    assert run_op(systemd_units, off, ["x.service"], running=False, enabled=False) == []
    # A unit that should run and failed is started, not merely reset.
    wanted = _unit_host("[Unit]\n", active="failed", enabled="enabled")
    assert raw(run_op(systemd_units, wanted, ["x.service"], running=True)) == [
        "set -e; { systemctl start x.service || { systemctl daemon-reload &&"
        " systemctl start x.service; }; }"
    ]


def test_service_unit_writes_enables_and_starts_a_new_unit_in_one_command() -> None:
    host = _unit_host(None, active="inactive", enabled="disabled")
    (command,) = raw(run_op(systemd_units, host, ["x.service"], files={"x.service": "[Unit]\n"},
                            running=True, enabled=True))  # fmt: skip
    assert command == (
        "set -e; rm -f /etc/systemd/system/x.service.new"
        " && printf %s '[Unit]\n' > /etc/systemd/system/x.service.new && chmod 0644"
        " /etc/systemd/system/x.service.new && mv -f /etc/systemd/system/x.service.new"
        " /etc/systemd/system/x.service; systemctl enable --no-reload x.service;"
        " { systemctl start x.service || { systemctl daemon-reload && systemctl start x.service;"
        " }; }"
    )


def test_service_unit_restarts_a_running_service_on_a_new_file_only() -> None:
    same = _unit_host("[Unit]\n")
    assert (
        run_op(
            systemd_units,
            same,
            ["x.service"],
            files={"x.service": "[Unit]\n"},
            running=True,
            enabled=True,
        )
        == []
    )
    assert same.noops == ["x.service: as configured"]
    changed = _unit_host("old")
    (command,) = raw(
        run_op(systemd_units, changed, ["x.service"], files={"x.service": "new"}, running=True)
    )
    assert command.endswith("systemctl daemon-reload; systemctl restart x.service")
    # Only the file: no restart (a rolling restart follows elsewhere).
    (command,) = raw(
        run_op(systemd_units, _unit_host("old"), ["x.service"], files={"x.service": "new"})
    )
    assert command.endswith("systemctl daemon-reload")
    stopped = raw(
        run_op(systemd_units, _unit_host("a"), ["x.service"], running=False, enabled=False)
    )
    assert stopped == ["set -e; systemctl disable --no-reload x.service; systemctl stop x.service"]


def test_after_a_rotation_the_run_reads_the_cas_certificates_again() -> None:
    """The nodes' trust and certificates, later in the same run, follow the new intermediate."""
    from etcd_step_pki.operations.certificates import ca_material_changed
    from etcd_step_pki.operations.remote import RunTimeStep

    commands = run_op(
        intermediate_rotated, _ca_host(NOW - dt.timedelta(days=30)), path="/etc/step-ca",
        issued_before=NOW.timestamp(), duration="87600h", now=NOW.timestamp(),
    )  # fmt: skip
    assert isinstance(commands[-1], RunTimeStep)
    assert commands[-1].function is ca_material_changed
