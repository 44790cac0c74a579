"""Revocation: which certificates are revoked (from step-ca's records of what it issued), how
the cert-manager revokes them."""

from __future__ import annotations

import gzip
import shlex
import subprocess
import time
from pathlib import Path
from unittest import mock

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.facts.bolt import BoltError, BoltFile
from etcd_step_pki.facts.ca_records import CARecords, records
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.revocation import (
    Holder,
    recorded_certificates_revoked,
    revoke_command,
)
from etcd_step_pki.operations.tokens import Authority
from tests.unit.fakes import FakeHost, FakeState, raw, run_op

AUTHORITY = Authority(url="https://ca.test:9000", cert_manager="etcd-k8s-1")


DATABASE = Path(__file__).parent / "data" / "step-ca-bbolt.db.gz"
NOW = 1_800_000_000.0


def _cert(serial: int, subject: str, sans: list[str], start: float = 1000.0,
          end: float = NOW + 1000) -> dict[str, object]:  # fmt: skip
    return {"serial": serial, "subject": subject, "sans": sans, "not_before": start,
            "not_after": end}  # fmt: skip


RECORDS = {
    "issued": [
        _cert(1, "etcd-k8s-3", ["etcd-k8s-3", "localhost", "10.0.0.13"]),  # server
        _cert(2, "etcd-k8s-peer", ["etcd-k8s-3", "localhost", "10.0.0.13"]),  # its peer
        _cert(3, "etcd-k8s-3", ["etcd-k8s-3", "10.0.0.13"], start=5000.0),  # a renewal, later
        _cert(4, "etcd-k8s-3", ["etcd-k8s-3"], end=NOW - 1),  # expired
        _cert(5, "etcd-k8s-peer", ["etcd-k8s-2", "localhost", "10.0.0.12"]),  # another's
        _cert(6, "etcd-k8s-3", ["etcd-k8s-3"]),  # revoked already
    ],
    "revoked": {6},
}
HOLDER = Holder(
    subjects=frozenset({"etcd-k8s-3"}),
    sans=frozenset({"etcd-k8s-3", "10.0.0.13"}),
    san_subjects=frozenset({"etcd-k8s-3", "etcd-k8s-peer"}),
)


class _Manager:
    """The cert-manager as Remote.of gives it: its records read as a fact."""

    name = "etcd-k8s-1"

    def __init__(self, records: dict[str, object] | None) -> None:
        self.records = records

    def fact(self, fact: object, **kwargs: object) -> object:
        assert fact is CARecords and kwargs["source"] == "/etc/step-ca/db/bbolt.db"
        return self.records


def _revoke(records: dict[str, object] | None, **kwargs: object) -> list:
    args = {"authority": AUTHORITY, "database": "/etc/step-ca/db/bbolt.db", "reason": "r",
            "code": "1", "now": NOW}  # fmt: skip
    with mock.patch.object(Remote, "of", return_value=_Manager(records)):
        return run_op(recorded_certificates_revoked, FakeHost({}), HOLDER, **{**args, **kwargs})


def test_every_recorded_generation_of_the_holder_not_expired_or_revoked_is_revoked() -> None:
    (step,) = _revoke(RECORDS)
    assert isinstance(step, RunTimeStep) and step.args[1] == [1, 2, 3]
    assert _revoke({**RECORDS, "revoked": {1, 2, 3, 6}}) == []


def test_a_certificate_issued_after_the_time_is_left_alone() -> None:
    (step,) = _revoke(RECORDS, issued_before=2000.0)
    assert step.args[1] == [1, 2]


def test_unreadable_records_stop_before_anything_is_revoked() -> None:
    with pytest.raises(OperationError, match="records"):
        _revoke(None)


def test_whose_certificates_is_decided_by_subjects_and_names_no_one_else_has() -> None:
    anyone = Holder(subjects=frozenset({"client-1"}), sans=frozenset({"10.0.0.101"}))
    assert anyone.holds(_cert(1, "client-1", ["localhost"]))
    assert anyone.holds(_cert(2, "anything", ["10.0.0.101"]))
    assert not anyone.holds(_cert(3, "anything", ["localhost", "127.0.0.1"]))
    # One cluster's membership: a SAN counts only for that cluster's subjects.
    assert not HOLDER.holds(_cert(4, "etcd-other-peer", ["etcd-k8s-3"]))
    assert HOLDER.holds(_cert(5, "etcd-k8s-peer", ["10.0.0.13"]))


def test_step_cas_database_reads_as_its_issued_and_revoked_certificates() -> None:
    found = records(gzip.decompress(DATABASE.read_bytes()))
    assert len(found["issued"]) == 12 and found["revoked"] == set()
    subjects = sorted(c["subject"] for c in found["issued"])
    assert subjects.count("etcd-k8s-peer") == 5 and "client-1" in subjects
    peer = next(c for c in found["issued"] if c["subject"] == "etcd-k8s-peer")
    assert peer["serial"] > 2**64 and "localhost" in peer["sans"]


def test_a_torn_or_foreign_file_does_not_read() -> None:
    data = bytearray(gzip.decompress(DATABASE.read_bytes()))
    with pytest.raises(BoltError):
        BoltFile(b"\0" * 8192)
    data[16:80] = bytes(64)  # page 0's meta gone: page 1's is older but whole
    assert records(bytes(data))["issued"]
    data[4096 + 16 : 4096 + 80] = bytes(64)
    with pytest.raises(BoltError):
        records(bytes(data))


def test_tokens_stay_in_the_shell_and_reach_step_in_its_environment() -> None:
    revoke = revoke_command(AUTHORITY, [10, 255], "host removed", "cessationOfOperation")
    command = shlex.split(revoke.get_raw_value())[2]  # bash -c <script> <template>
    assert command.count("crypto jwe decrypt") == 1
    for serial in ("10", "255"):
        assert f"ca token {serial} --revoke" in command
        assert f'STEP_TOKEN="$tok" /opt/bin/step ca revoke {serial}' in command
    assert "--token" not in command
    assert "--reason 'host removed' --reasonCode cessationOfOperation" in command


def test_a_members_copy_of_the_crl_is_fetched_when_it_lists_otherwise_than_the_cas() -> None:
    from etcd_step_pki.facts.revocation import RevocationLists
    from etcd_step_pki.operations.revocation import crl_current

    def lists(local: set[int] | None, ca: set[int] | None) -> FakeHost:
        return FakeHost({RevocationLists: {"local": local, "ca": ca}})

    args = {"crl_url": "https://ca.test:9000/1.0/crl", "root": "/ssl/root_ca.crt",
            "chain": "/ssl/ca-chain.crt"}  # fmt: skip
    (command,) = raw(run_op(crl_current, lists({1}, {1, 2}), "/ssl/ca.crl", **args))
    fetch = shlex.split(command)[2]  # bash -c <script> <template>
    assert "work=/ssl/ca.crl.fetched\nnew=/ssl/ca.crl.new\n" in fetch
    assert 'curl -sf --max-time 20 --retry 2 --cacert /ssl/root_ca.crt -o "$work"' in fetch
    assert '/bin/mv -f "$new" /ssl/ca.crl' in fetch and 'rm -f "$work"' in fetch
    assert raw(run_op(crl_current, lists(set(), set()), "/ssl/ca.crl", **args)) == []
    # The CA away: a copy stays as it is; no copy at all stops the run (etcd would refuse all).
    assert raw(run_op(crl_current, lists({1}, None), "/ssl/ca.crl", **args)) == []
    with pytest.raises(OperationError, match="missing"):
        run_op(crl_current, lists(None, None), "/ssl/ca.crl", **args)
    # Planned before the run trusts (or starts) the CA: a fetch, read again at execution.
    planning = lists(None, None)
    planning.state = FakeState(is_executing=False)
    assert len(run_op(crl_current, planning, "/ssl/ca.crl", **args)) == 1
    output = ["### etcd-step-pki local", "### etcd-step-pki ca", "ok", "0A"]
    assert RevocationLists().process(output) == {"local": None, "ca": {10}}


def test_the_crl_timer_fetches_as_etcd_and_puts_in_place_privileged() -> None:
    from etcd_step_pki.operations.revocation import crl_units

    units = crl_units(
        "https://ca.test:9000/1.0/crl", "/ssl/root_ca.crt", "/ssl/ca.crl", "etcd", "/opt/bin"
    )
    service = units["etcd-pki-crl.service"]
    assert "User=etcd" in service
    assert (
        "ExecStart=/usr/bin/curl -sf --max-time 20 --retry 2 --cacert /ssl/root_ca.crt"
        " -o %t/etcd-pki-crl/ca.crl https://ca.test:9000/1.0/crl" in service
    )
    take = next(line for line in service.splitlines() if " take " in line)
    assert take.startswith('ExecStartPost=+/bin/sh -c \'rm -f "$$2" && /usr/bin/setpriv --reuid=')
    assert take.endswith(" take %t/etcd-pki-crl/ca.crl /ssl/ca.crl.new etcd")
    assert "/opt/bin/etcd-pki-crl-check" in take
    assert "ExecStartPost=+/bin/mv -f /ssl/ca.crl.new /ssl/ca.crl" in service
    assert "OnCalendar=hourly" in units["etcd-pki-crl.timer"]


def _crl(directory: Path, signer: str, number: int) -> Path:
    """A CRL (DER) signed by `signer`'s key, made by openssl's own CA, with a number."""
    (directory / "index").touch()
    (directory / "number").write_text(f"{number:02x}\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index\ncrlnumber = number\n"
        "default_md = sha256\ndefault_crl_days = 1\n"
    )
    pem, der = directory / f"{signer}-{number}.pem", directory / f"{signer}-{number}.crl"
    subprocess.run(["openssl", "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", f"{signer}.key",
                    "-cert", f"{signer}.crt", "-out", pem.name], cwd=directory, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run(["openssl", "crl", "-in", pem.name, "-outform", "DER", "-out", der.name],
                   cwd=directory, check=True)  # fmt: skip
    return der


def test_a_fetched_crl_is_used_only_when_the_ca_signed_it_and_it_is_not_older(
    tmp_path: Path,
) -> None:
    from etcd_step_pki.operations.revocation import crl_check_script

    for name in ("ca", "other"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key", "-out",
                        f"{name}.crt", "-subj", "/CN=etcd-pki CA", "-days", "1"],
                       cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    older = _crl(tmp_path, "ca", 1)
    time.sleep(1.1)  # a second later: CRL times are to the second
    newer = _crl(tmp_path, "ca", 2)
    forged = _crl(tmp_path, "other", 3)
    current = tmp_path / "ca.crl"
    check = tmp_path / "check"
    check.write_text(crl_check_script(str(tmp_path / "ca.crt"), str(current)))

    def checked(new: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(check), str(new)], capture_output=True, text=True)

    assert checked(older).returncode == 0  # nothing in place yet
    current.write_bytes(newer.read_bytes())
    assert checked(newer).returncode == 0
    replayed = checked(older)
    assert replayed.returncode == 1 and "older than the one in place" in replayed.stderr
    wrong = checked(forged)
    assert wrong.returncode == 1 and "not signed by the CA" in wrong.stderr
