"""Renewal units: rendered per certificate, uploaded only when different, timers converge."""

from __future__ import annotations

import hashlib

from pyinfra.api import Inventory

from deploys.settings import settings_for
from facts.certificates import NodeCertificates
from facts.units import Units
from operations.renewal import renewal_units, renewed_now, unit_files
from tests.unit.fakes import FakeHost, raw, run_op


def _settings(data: dict | None = None, name: str = "etcd-k8s-2"):
    inventory = Inventory(
        ([("etcd-k8s-1", {"ssh_hostname": "10.0.0.1"}), (name, {"ssh_hostname": "10.0.0.2"})],
         data or {}),
        etcd=(["etcd-k8s-1", name], {}),
        etcd_cert_managers=(["etcd-k8s-1"], {}),
    )  # fmt: skip
    return settings_for(inventory.get_host(name), inventory)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_service_and_a_timer_per_certificate() -> None:
    files = unit_files(_settings(), "https://etcd-k8s-1:9000")
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
    assert (
        "ExecStart=/opt/bin/step ca renew --force --ca-url https://etcd-k8s-1:9000 --root "
        "/etc/etcd/ssl/root_ca.crt --out /etc/etcd/ssl/etcd-k8s-2-peer.crt.new "
        "/etc/etcd/ssl/etcd-k8s-2-peer.crt /etc/etcd/ssl/etcd-k8s-2-peer.key\n"
    ) in service
    assert "ExecStartPost=/bin/mv -f /etc/etcd/ssl/etcd-k8s-2-peer.crt.new" in service
    timer = files["step-renew-etcd-k8s-2-peer.timer"]
    for line in ("OnCalendar=*-*-* 03:00:00", "RandomizedDelaySec=1h", "Persistent=true"):
        assert line in timer


def test_schedule_and_renewal_point_are_configurable() -> None:
    settings = _settings({"renewal_on_calendar": "Sun *-*-* 02:00:00", "renewal_expires_in": "80%"})
    files = unit_files(settings, "https://ca:9000")
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
    assert run_op(renewal_units, host, files) == []
    assert host.noops == ["1 renewal timer(s) enabled and running"]


def test_changed_files_are_written_reloaded_and_timers_restarted_in_one_command() -> None:
    files = {"a.service": "s", "a.timer": "t\n'x'", "b.timer": "u"}
    host = _host(files, active=True, changed={"a.timer"})
    assert raw(run_op(renewal_units, host, files)) == [
        "set -e; printf %s 't\n'\"'\"'x'\"'\"'' > /etc/systemd/system/a.timer.new"
        " && chmod 0644 /etc/systemd/system/a.timer.new"
        " && mv -f /etc/systemd/system/a.timer.new /etc/systemd/system/a.timer;"
        " systemctl daemon-reload; systemctl restart a.timer"
    ]


def test_new_units_are_written_and_enabled_without_a_reload() -> None:
    files = {"a.service": "s", "a.timer": "t"}
    host = FakeHost({Units: {"files": {}, "states": {}}})
    (command,) = raw(run_op(renewal_units, host, files))
    assert "systemctl daemon-reload;" not in command  # only as the fallback of old systemd
    # systemd loads a unit file it has not seen when the unit is first used.
    assert command.endswith(
        "; { systemctl enable --no-reload --now a.timer || { systemctl daemon-reload"
        " && systemctl enable --no-reload --now a.timer; }; }"
    )
    assert command.count("printf %s") == 2


def test_new_timers_are_enabled_and_disabled_ones_stopped() -> None:
    files = {"a.service": "s", "a.timer": "t"}
    (enable,) = raw(run_op(renewal_units, _host(files, active=False), files))
    assert enable.startswith("set -e; { systemctl enable --no-reload --now a.timer ||")
    assert raw(run_op(renewal_units, _host(files, active=True), files, enabled=False)) == [
        "set -e; systemctl disable --no-reload --now a.timer"
    ]


def test_units_fact_parses_hashes_and_states() -> None:
    output = [
        "a.timer " + "f" * 64,
        "a.service -",
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


def test_renew_now_starts_every_due_unit_with_two_reloads_in_all() -> None:
    settings = _settings()
    files = {c.crt: {"cert": {"not_before": 0.0}} for c in settings.certificates}
    files[settings.certificates[0].crt] = {"cert": {"not_before": 5000.0}}  # renewed already
    host = FakeHost({NodeCertificates: {"files": files}})
    (command,) = raw(run_op(renewed_now, host, settings=settings, issued_before=1000.0))
    assert command.count("systemctl daemon-reload") == 2
    due = [c.unit for c in settings.certificates[1:]]
    assert f"systemctl start {' '.join(u + '.service' for u in due)} ||" in command
    assert settings.certificates[0].unit not in command
    assert command.endswith('systemctl daemon-reload; exit "$rc"')
