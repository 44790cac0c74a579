"""Renewal units: a systemd service and timer per certificate, written and enabled in one go."""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, StringCommand, operation

from deploys.settings import Certificate, Settings
from facts.units import Units
from operations.shell import script
from templates import render

UNIT_DIR = "/etc/systemd/system"


def unit_files(settings: Settings, ca_url: str) -> dict[str, str]:
    """`{unit file name: content}` of every renewal service and timer of a host."""
    files = {}
    for item in settings.certificates:
        values = _values(settings, item, ca_url)
        files[f"{item.unit}.service"] = render("step-renew.service.j2", **values)
        files[f"{item.unit}.timer"] = render("step-renew.timer.j2", **values)
    return files


def _values(settings: Settings, item: Certificate, ca_url: str) -> dict[str, object]:
    return {
        "kind": item.kind,
        "subject": item.subject,
        "crt": item.crt,
        "key": item.key,
        "user": settings.etcd_user,
        "bin_dir": settings.bin_dir,
        "step_path": settings.step_path,
        "ca_url": ca_url,
        "root": settings.root_file,
        "expires_in": settings.renewal.expires_in,
        "on_calendar": settings.renewal.on_calendar,
        "randomized_delay": settings.renewal.randomized_delay,
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@operation()
def renewal_units(files: Mapping[str, str], *, enabled: bool = True) -> Generator:
    """
    Keep the renewal units as rendered, their timers enabled and running (or disabled).

    + files: unit file name -> content (`step-renew-<member>-<kind>.{service,timer}`)
    + enabled: whether the timers run; disabled timers keep their files for manual renewal
    """
    timers = sorted(name for name in files if name.endswith(".timer"))
    found = host.get_fact(Units, units=sorted(files))
    changed = [name for name, text in files.items() if found["files"].get(name) != _digest(text)]
    for name in sorted(changed):
        yield FileUploadCommand(StringIO(files[name]), f"{UNIT_DIR}/{name}")
    if changed:
        yield StringCommand("systemctl", "daemon-reload")
    states = found["states"]
    if enabled:
        start = [
            t
            for t in timers
            if states.get(t, {}).get("UnitFileState") != "enabled"
            or states.get(t, {}).get("ActiveState") != "active"
        ]
        restart = [t for t in timers if t in changed and t not in start]
        if start:
            yield script("systemctl enable --now {units}", units=start)
        if restart:
            yield script("systemctl restart {units}", units=restart)
        if not (changed or start or restart):
            host.noop(f"{len(timers)} renewal timer(s) enabled and running")
    else:
        stop = [
            t
            for t in timers
            if states.get(t, {}).get("UnitFileState") == "enabled"
            or states.get(t, {}).get("ActiveState") == "active"
        ]
        if stop:
            yield script("systemctl disable --now {units}", units=stop)
        if not (changed or stop):
            host.noop(f"{len(timers)} renewal timer(s) disabled")
