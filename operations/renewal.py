"""Renewal units: a systemd service and timer per certificate, written and enabled in one go."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from deploys.settings import Certificate, Settings
from facts.certificates import NodeCertificates
from facts.units import Units
from operations.shell import raw, script
from operations.units import digest, first_use, reload_needed, write_unit
from templates import render


def unit_files(settings: Settings, ca_url: str) -> dict[str, str]:
    """`{unit file name: content}` of every renewal service and timer of a host."""
    files = {}
    for item in settings.certificates:
        values = _values(settings, item, ca_url)
        files[f"{item.unit}.service"] = render("step-renew.service.j2", **values)
        files[f"{item.unit}.timer"] = render("step-renew.timer.j2", **values)
    return files


METRICS_SCRIPT = "etcd-pki-renewal-metrics"


def metrics_script(settings: Settings) -> str:
    """The textfile-metrics helper the renewal units call when metrics are on."""
    return render(
        "etcd-pki-renewal-metrics.sh.j2",
        textfile_dir=settings.renewal.metrics_dir,
        step_path=settings.step_path,
        bin_dir=settings.bin_dir,
        expires_in=settings.renewal.expires_in,
    )


def _values(settings: Settings, item: Certificate, ca_url: str) -> dict[str, object]:
    expires = f" --expires-in {settings.renewal.expires_in}" if settings.renewal.expires_in else ""
    helper = f"{settings.bin_dir}/{METRICS_SCRIPT}"
    args = f"{item.subject}-{item.kind} {item.kind} {item.crt}"
    metrics = settings.renewal.metrics_dir is not None
    return {
        "condition": (
            f"{helper} check {args}"
            if metrics
            else f"{settings.bin_dir}/step certificate needs-renewal {item.crt}{expires}"
        ),
        "metrics_record": f"{helper} record {args}" if metrics else "",
        "kind": item.kind,
        "subject": item.subject,
        "crt": item.crt,
        "key": item.key,
        "user": settings.etcd_user,
        "bin_dir": settings.bin_dir,
        "step_path": settings.step_path,
        "ca_url": ca_url,
        "root": settings.root_file,
        "on_calendar": settings.renewal.on_calendar,
        "randomized_delay": settings.renewal.randomized_delay,
    }


@operation()
def renewal_units(files: Mapping[str, str], *, enabled: bool = True) -> Generator:
    """
    Keep the renewal units as rendered, their timers enabled and running (or disabled).

    + files: unit file name -> content (`step-renew-<member>-<kind>.{service,timer}`)
    + enabled: whether the timers run; disabled timers keep their files for manual renewal
    """
    timers = sorted(name for name in files if name.endswith(".timer"))
    found = host.get_fact(Units, units=sorted(files))
    changed = sorted(n for n, text in files.items() if found["files"].get(n) != digest(text))
    # Unit files are no secret: written inline, reloaded and (re)started in one command.
    commands = [write_unit(name, files[name]) for name in changed]
    states = found["states"]

    def file_state(unit: str) -> str | None:
        return states.get(unit, {}).get("UnitFileState")

    if enabled:
        switch = [t for t in timers if file_state(t) != "enabled" or _inactive(states, t)]
        restart = [t for t in timers if t in changed and t not in switch]
        verb = "enable"
    else:
        switch = [t for t in timers if file_state(t) == "enabled" or not _inactive(states, t)]
        restart = []
        verb = "disable"
    if reload_needed(found["files"], changed):
        commands.append("systemctl daemon-reload")
    if switch:
        command = raw(f"systemctl {verb} --no-reload --now {{units}}", units=switch)
        commands.append(first_use(command) if enabled else command)
    if restart:
        commands.append(raw("systemctl restart {units}", units=restart))
    if commands:
        yield StringCommand("set -e; " + "; ".join(commands))
    else:
        state = "enabled and running" if enabled else "disabled"
        host.noop(f"{len(timers)} renewal timer(s) {state}")


def _inactive(states: Mapping[str, dict], unit: str) -> bool:
    return states.get(unit, {}).get("ActiveState") != "active"


# step-ca backdates certificates by a minute: one renewed at time T starts at T - 1 min.
BACKDATE = 60.0


@operation()
def renewed_now(
    *, settings: Settings, issued_before: float, kinds: Sequence[str] = ("peer", "server", "client")
) -> Generator:
    """
    Renew now, through their renewal units, the certificates issued before a point in time.

    + settings: this host's validated settings
    + issued_before: certificates that started before this time (seconds) are renewed
    + kinds: which of the host's certificates

    The unit runs as on its timer (mTLS renewal, owner and mode fixed, metrics) with its
    renewal-due condition lifted by a runtime drop-in for this one start. A certificate
    renewed by an earlier run started after `issued_before`: a second run changes nothing.
    """
    items = [c for c in settings.certificates if c.kind in kinds]
    found = host.get_fact(
        NodeCertificates,
        ssl_dir=settings.ssl_dir,
        step_path=settings.step_path,
        pairs=[(c.crt, c.key) for c in items],
    )
    due = []
    for item in items:
        cert = (found["files"].get(item.crt) or {}).get("cert")
        if cert is None:
            raise OperationError(f"{item.crt} is missing: run deploys/certs.py to issue it")
        if cert["not_before"] + BACKDATE < issued_before:
            due.append(item)
    if not due:
        host.noop(f"{len(items)} certificate(s) issued after the given time already")
        return
    # The renewal-due condition is lifted for every due unit at once: one reload to apply
    # the drop-ins, one to drop them, whatever the number of certificates.
    yield script(
        'rc=0; for u in {units}; do d="/run/systemd/system/$u.service.d"; install -d "$d";'
        ' printf "[Service]\\nExecCondition=\\n" > "$d/renew-now.conf"; done;'
        " systemctl daemon-reload; systemctl start {services} || {{ rc=$?;"
        ' for u in {units}; do journalctl -u "$u.service" -n 5 --no-pager >&2; done; }};'
        ' for u in {units}; do rm -rf "/run/systemd/system/$u.service.d"; done;'
        ' systemctl daemon-reload; exit "$rc"',
        units=[item.unit for item in due],
        services=[f"{item.unit}.service" for item in due],
    )
