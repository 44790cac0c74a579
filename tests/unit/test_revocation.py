"""Revocation: which certificates are revoked, how the cert-manager revokes them."""

from __future__ import annotations

import shlex

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.facts.revocation import Revocation
from etcd_step_pki.operations.remote import RunTimeStep
from etcd_step_pki.operations.revocation import certificates_revoked, revoke_command
from etcd_step_pki.operations.tokens import Authority
from tests.unit.fakes import FakeHost, FakeState, raw, run_op

AUTHORITY = Authority(url="https://ca.test:9000", cert_manager="etcd-k8s-1")
FILES = ["/ssl/a.crt", "/ssl/b.crt"]


def test_the_fact_reads_serials_start_times_and_the_crl() -> None:
    found = Revocation().process(
        [
            "### etcd-step-pki serials",
            "/ssl/a.crt 0A 1000",
            "/ssl/b.crt FF 2000",
            "### etcd-step-pki crl",
            "ok",
            "0A",
        ]
    )
    assert found == {
        "serials": {"/ssl/a.crt": 10, "/ssl/b.crt": 255},
        "issued": {"/ssl/a.crt": 1000.0, "/ssl/b.crt": 2000.0},
        "revoked": {10},
        "crl": True,
    }
    assert (
        Revocation().process(["### etcd-step-pki serials", "### etcd-step-pki crl"])["crl"] is False
    )


def _host(revoked: set[int], crl: bool = True) -> FakeHost:
    return FakeHost(
        {
            Revocation: {
                "serials": {"/ssl/a.crt": 10, "/ssl/b.crt": 255},
                "issued": {"/ssl/a.crt": 1000.0, "/ssl/b.crt": 5000.0},
                "revoked": revoked,
                "crl": crl,
            }
        }
    )


def _revoke(host: FakeHost, **kwargs: object) -> list:
    args = {"authority": AUTHORITY, "root": "/ssl/root_ca.crt", "reason": "r", "code": "1"}
    return run_op(certificates_revoked, host, FILES, **{**args, **kwargs})


def test_only_what_the_crl_does_not_list_is_revoked_by_decimal_serial() -> None:
    (step,) = _revoke(_host({10}))
    assert isinstance(step, RunTimeStep) and step.args[1] == [255]
    host = _host({10, 255})
    assert _revoke(host) == []
    assert host.noops == ["2 certificates of this host are revoked at the CA"]


def test_a_certificate_issued_after_the_time_is_left_alone() -> None:
    (step,) = _revoke(_host(set()), issued_before=2000.0)
    assert step.args[1] == [10]
    # Revoked by a run that was cut short: not revoked twice.
    assert _revoke(_host({10}), issued_before=2000.0) == []


def test_an_unreadable_crl_stops_before_anything_is_revoked() -> None:
    with pytest.raises(OperationError, match="CRL"):
        _revoke(_host(set(), crl=False))


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

    args = {"crl_url": "https://ca.test:9000/1.0/crl", "root": "/ssl/root_ca.crt"}
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

    units = crl_units("https://ca.test:9000/1.0/crl", "/ssl/root_ca.crt", "/ssl/ca.crl", "etcd")
    service = units["etcd-pki-crl.service"]
    assert "User=etcd" in service
    assert (
        "ExecStart=/usr/bin/curl -sf --max-time 20 --retry 2 --cacert /ssl/root_ca.crt"
        " -o %t/etcd-pki-crl/ca.crl https://ca.test:9000/1.0/crl" in service
    )
    take = next(line for line in service.splitlines() if " take " in line)
    assert take.startswith('ExecStartPost=+/bin/sh -c \'rm -f "$$2" && /usr/bin/setpriv --reuid=')
    assert take.endswith(" take %t/etcd-pki-crl/ca.crl /ssl/ca.crl.new etcd")
    assert "/usr/bin/openssl crl -inform DER -noout -in" in take
    assert "ExecStartPost=+/bin/mv -f /ssl/ca.crl.new /ssl/ca.crl" in service
    assert "OnCalendar=hourly" in units["etcd-pki-crl.timer"]
