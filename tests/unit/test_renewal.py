"""Renewal units: rendered per certificate, uploaded only when different, timers converge."""

from __future__ import annotations

import hashlib
import shlex

from etcd_step_pki.facts.certificates import NodeCertificates
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations.certificates import Certificate, StepNode
from etcd_step_pki.operations.renewal import (
    RenewalSchedule,
    metrics_script,
    renewed_now,
    timers,
    unit_files,
)
from etcd_step_pki.operations.units import systemd_units
from tests.unit.fakes import FakeHost, raw, run_op

# Plain values, as an operator's own deploy passes them.
NODE = StepNode()
CERTIFICATES = [
    Certificate(kind, "etcd-k8s-2", f"/etc/etcd/ssl/etcd-k8s-2-{kind}.crt",
                f"/etc/etcd/ssl/etcd-k8s-2-{kind}.key")
    for kind in ("peer", "server", "client")
]  # fmt: skip


def renewal_units(files: dict[str, str], enabled: bool = True):
    """The renewal units as deploys/components/certificates.py keeps them."""
    units = sorted(name for name in files if name.endswith(".timer"))

    def run(host: FakeHost) -> list:
        return run_op(systemd_units, host, units, files=files, running=enabled, enabled=enabled)

    return run


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_service_and_a_timer_per_certificate() -> None:
    files = unit_files(CERTIFICATES, NODE, "https://etcd-k8s-1:9000", RenewalSchedule())
    assert sorted(files) == [
        f"step-renew-etcd-k8s-2-{kind}.{suffix}"
        for kind in ("client", "peer", "server")
        for suffix in ("service", "timer")
    ]
    service = files["step-renew-etcd-k8s-2-peer.service"]
    assert (
        "ExecCondition=/opt/bin/step certificate needs-renewal /etc/etcd/ssl/etcd-k8s-2-peer.crt\n"
        in service
    )
    # As the certificate's owner, into its own runtime directory; only putting the new
    # certificate in place runs as root.
    assert "User=etcd\n" in service and "CapabilityBoundingSet=\n" in service
    assert (
        "ExecStart=/opt/bin/step ca renew --force --ca-url https://etcd-k8s-1:9000 --root "
        "/etc/etcd/ssl/root_ca.crt --out %t/step-renew-etcd-k8s-2-peer/new.crt "
        "/etc/etcd/ssl/etcd-k8s-2-peer.crt /etc/etcd/ssl/etcd-k8s-2-peer.key\n"
    ) in service
    # The new certificate is read as the account (setpriv), written and checked by root.
    take = next(line for line in service.splitlines() if " take " in line)
    assert take.startswith('ExecStartPost=+/bin/sh -c \'rm -f "$$2" && /usr/bin/setpriv --reuid=')
    assert take.endswith(
        " take %t/step-renew-etcd-k8s-2-peer/new.crt /etc/etcd/ssl/etcd-k8s-2-peer.pair/crt.new etcd"
    )
    assert "/usr/bin/openssl x509 -noout -in" in take and 'chown "$$3:$$3"' in take
    assert "ExecStartPost=+/bin/mv -f /etc/etcd/ssl/etcd-k8s-2-peer.pair/crt.new" in service
    timer = files["step-renew-etcd-k8s-2-peer.timer"]
    for line in ("OnCalendar=*-*-* 03:00:00", "RandomizedDelaySec=1h", "Persistent=true"):
        assert line in timer


def test_schedule_and_renewal_point_are_configurable() -> None:
    schedule = RenewalSchedule(on_calendar="Sun *-*-* 02:00:00", expires_in="80%")
    files = unit_files(CERTIFICATES, NODE, "https://ca:9000", schedule)
    assert "OnCalendar=Sun *-*-* 02:00:00" in files["step-renew-etcd-k8s-2-client.timer"]
    assert (
        "needs-renewal /etc/etcd/ssl/etcd-k8s-2-client.crt --expires-in 80%"
        in (files["step-renew-etcd-k8s-2-client.service"])
    )


def _host(files: dict[str, str], active: bool, changed: set[str] = frozenset()) -> FakeHost:
    state = "active" if active else "inactive"
    enabled = "enabled" if active else "disabled"
    found = {
        "files": {n: ("0" * 64 if n in changed else _digest(t)) for n, t in files.items()},
        "states": {n: {"ActiveState": state, "UnitFileState": enabled} for n in files},
    }
    return FakeHost({Units: found})


def test_nothing_to_do_when_units_match_and_timers_run() -> None:
    files = {"a.service": "s", "a.timer": "t"}
    host = _host(files, active=True)
    assert renewal_units(files)(host) == []
    assert host.noops == ["a.timer: as configured"]


def test_changed_files_are_written_reloaded_and_timers_restarted_in_one_command() -> None:
    files = {"a.service": "s", "a.timer": "t\n'x'", "b.timer": "u"}
    host = _host(files, active=True, changed={"a.timer"})
    assert raw(renewal_units(files)(host)) == [
        "set -e; rm -f /etc/systemd/system/a.timer.new"
        " && printf %s 't\n'\"'\"'x'\"'\"'' > /etc/systemd/system/a.timer.new"
        " && chmod 0644 /etc/systemd/system/a.timer.new"
        " && mv -f /etc/systemd/system/a.timer.new /etc/systemd/system/a.timer;"
        " systemctl daemon-reload; systemctl restart a.timer"
    ]


def test_new_units_are_written_and_enabled_without_a_reload() -> None:
    files = {"a.service": "s", "a.timer": "t"}
    host = FakeHost({Units: {"files": {}, "states": {}}})
    (command,) = raw(renewal_units(files)(host))
    assert "systemctl daemon-reload;" not in command  # only as the fallback of old systemd
    # systemd loads a unit file it has not seen when the unit is first used.
    assert command.endswith(
        "; systemctl enable --no-reload a.timer; { systemctl start a.timer ||"
        " { systemctl daemon-reload && systemctl start a.timer; }; }"
    )
    assert command.count("printf %s") == 2


def test_new_timers_are_enabled_and_disabled_ones_stopped() -> None:
    files = {"a.service": "s", "a.timer": "t"}
    (enable,) = raw(renewal_units(files)(_host(files, active=False)))
    assert enable.startswith("set -e; systemctl enable --no-reload a.timer; { systemctl start")
    assert raw(renewal_units(files, enabled=False)(_host(files, active=True))) == [
        "set -e; systemctl disable --no-reload a.timer; systemctl stop a.timer"
    ]


def test_units_fact_parses_hashes_and_states() -> None:
    output = [
        "-  a.service",
        "f" * 64 + "  a.timer",
        "### etcd-step-pki enabled",
        "a.timer   enabled enabled",
        "a.service static  -",
        "### etcd-step-pki states",
        "Id=a.timer",
        "ActiveState=active",
        "",
        "Id=a.service",
        "Result=exit-code",
    ]
    fact = Units().process(output)
    assert fact["files"] == {"a.timer": "f" * 64, "a.service": None}
    assert fact["states"]["a.service"]["Result"] == "exit-code"
    assert fact["states"]["a.timer"]["ActiveState"] == "active"
    assert fact["states"]["a.timer"]["UnitFileState"] == "enabled"
    assert fact["states"]["a.service"]["UnitFileState"] == "static"


def test_renew_now_starts_every_due_unit_with_two_reloads_in_all() -> None:
    files = {c.crt: {"cert": {"not_before": 0.0}} for c in CERTIFICATES}
    files[CERTIFICATES[0].crt] = {"cert": {"not_before": 5000.0}}  # renewed already
    host = FakeHost({NodeCertificates: {"files": files}})
    (renew,) = raw(run_op(renewed_now, host, CERTIFICATES, node=NODE, issued_before=1000.0))
    command = shlex.split(renew)[2]  # bash -c <script> <template>
    assert command.count("systemctl daemon-reload") == 2
    due = [c.unit for c in CERTIFICATES[1:]]
    assert f"units=({' '.join(due)})\n" in command
    assert 'systemctl start "${units[@]/%/.service}" ||' in command
    assert CERTIFICATES[0].unit not in command
    assert timers(CERTIFICATES)[0] == "step-renew-etcd-k8s-2-peer.timer"
    assert command.endswith('systemctl daemon-reload\nexit "$rc"\n')


def test_the_metrics_helper_quotes_every_value_it_is_given() -> None:
    """A value reaching the root script is one shell word, even one the settings refuse."""
    hostile = "/x; touch /tmp/pwn"
    text = metrics_script(StepNode(bin_dir="/opt/b in"), RenewalSchedule(metrics_dir=hostile))
    assert "dir='/x; touch /tmp/pwn'" in text
    assert "'/opt/b in/step' ca health" in text
    assert "touch /tmp/pwn\n" not in text.replace("'/x; touch /tmp/pwn'", "")


def test_paths_with_shell_syntax_are_refused_before_any_host_is_touched() -> None:
    import pytest
    from pyinfra.api import Inventory

    from etcd_step_pki.deploys.settings import SettingsError, validate_inventory

    inventory = Inventory(
        ([("etcd-k8s-1", {"ssh_hostname": "10.0.0.1"})], {"metrics_textfile_dir": "/x; touch /y"}),
        etcd=(["etcd-k8s-1"], {}),
        etcd_cert_managers=(["etcd-k8s-1"], {}),
    )
    with pytest.raises(SettingsError, match="metrics_textfile_dir"):
        validate_inventory(inventory)


def test_a_timer_always_on_runs_where_the_others_are_switched_off() -> None:
    """renewal_enabled=False stops the renewal timers, never the revocation list's."""
    files = {"a.service": "s", "a.timer": "t", "crl.service": "c", "crl.timer": "d"}
    host = _host(files, active=True)
    host.facts[Units]["states"]["crl.timer"] = {
        "ActiveState": "inactive",
        "UnitFileState": "disabled",
    }
    units = ["a.timer"]
    (command,) = raw(
        run_op(
            systemd_units,
            host,
            units,
            files=files,
            running=False,
            enabled=False,
            always_on=["crl.timer"],
        )
    )
    assert command == (
        "set -e; systemctl enable --no-reload crl.timer; systemctl disable --no-reload a.timer;"
        " { systemctl start crl.timer || { systemctl daemon-reload && systemctl start crl.timer;"
        " }; }; systemctl stop a.timer"
    )


def test_a_timer_always_off_is_stopped_where_it_runs_and_left_alone_where_it_is_not() -> None:
    """Metrics switched off stop the CA probe's timer; a host that never had it reads one
    unit more, and changes nothing."""
    files = {"a.service": "s", "a.timer": "t"}
    host = _host({**files, "probe.timer": "p"}, active=True)
    (command,) = raw(
        run_op(systemd_units, host, ["a.timer"], files=files, running=True, enabled=True,
               always_off=["probe.timer"])
    )  # fmt: skip
    assert (
        command == "set -e; systemctl disable --no-reload probe.timer; systemctl stop probe.timer"
    )
    never = _host(files, active=True)
    assert run_op(systemd_units, never, ["a.timer"], files=files, running=True, enabled=True,
                  always_off=["probe.timer"]) == []  # fmt: skip
