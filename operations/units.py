"""A systemd service from its unit file to its state, in one operation and one fact.

pyinfra's `files.template` + `systemd.daemon_reload` + `systemd.service` read four facts, two of
them listing every unit of the host; this reads the one unit, and writes, reloads, enables and
starts (or restarts) in one command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from pyinfra import host
from pyinfra.api import StringCommand, operation
from pyinfra.api.operation import OperationMeta

from facts.units import Units
from operations.shell import raw

UNIT_DIR = "/etc/systemd/system"


def digest(text: str) -> str:
    """What the Units fact reports for a unit file of this text."""
    return hashlib.sha256(text.encode()).hexdigest()


def write_unit(unit: str, text: str) -> str:
    """The command that replaces a unit file atomically (unit files hold no secret)."""
    path = f"{UNIT_DIR}/{unit}"
    return raw(
        "printf %s {text} > {path}.new && chmod 0644 {path}.new && mv -f {path}.new {path}",
        text=text,
        path=path,
    )


def reload_needed(before: Mapping[str, str | None], changed: Iterable[str]) -> bool:
    """Whether systemd must reload for the new unit files: it loads a file it has not seen
    when the unit is first used, so only a unit whose file existed (and may be loaded) needs
    it. A reload costs a few hundred milliseconds of systemd's CPU on every host."""
    return any(before.get(name) is not None for name in changed)


def first_use(command: str) -> str:
    """`command` (a start of units whose files may be new to systemd), retried after a reload
    where systemd is too old to load a new unit file by itself (before v246)."""
    return f"{{ {command} || {{ systemctl daemon-reload && {command}; }}; }}"


@operation()
def service_unit(
    unit: str,
    *,
    content: str | None = None,
    running: bool | None = None,
    enabled: bool | None = None,
    restart_after: Sequence[OperationMeta] = (),
):
    """
    Keep a service's unit file, and keep it running (or stopped) and enabled (or not).

    + unit: the unit's name, e.g. `step-ca.service`
    + content: the unit file's text (None: leave the file alone)
    + running: True to start it (restarting a running one whose file changed), False to stop
      it, None to leave it as it is
    + enabled: whether it starts at boot (None: leave it)
    + restart_after: operations of this run whose change needs a restart of a running service
    """
    found = host.get_fact(Units, units=[unit])
    commands: list[str] = []
    changed = content is not None and found["files"].get(unit) != digest(content)
    if changed:
        commands.append(write_unit(unit, content))
    if changed and reload_needed(found["files"], [unit]):
        commands.append("systemctl daemon-reload")
    state = found["states"].get(unit, {})
    is_enabled = state.get("UnitFileState") == "enabled"
    if enabled is not None and enabled != is_enabled:
        commands.append(
            raw(f"systemctl {'enable' if enabled else 'disable'} --no-reload {{u}}", u=unit)
        )
    active = state.get("ActiveState") in ("active", "activating", "reloading")
    if running and not active:
        commands.append(first_use(raw("systemctl start {u}", u=unit)))
    elif running and (changed or _any_changed(restart_after)):
        commands.append(raw("systemctl restart {u}", u=unit))
    elif running is False and active:
        commands.append(raw("systemctl stop {u}", u=unit))
    if commands:
        yield StringCommand("set -e; " + "; ".join(commands))
    else:
        host.noop(f"{unit} is as it should be")


def _any_changed(metas: Sequence[OperationMeta]) -> bool:
    """Whether an earlier operation changed something; known only once the run executes."""
    return host.state.is_executing and any(m.did_change() for m in metas)
