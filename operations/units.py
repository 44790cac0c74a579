"""systemd units from their files to their state, in one operation and one fact.

pyinfra's `files.template` + `systemd.daemon_reload` + `systemd.service` read four facts, two of
them listing every unit of the host; this reads the units concerned, and writes, reloads,
enables and starts (or restarts) them in one command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

from pyinfra import host
from pyinfra.api import StringCommand, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.shell import previous_kept, raw, replace_file
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations import Change, Commands

UNIT_DIR = "/etc/systemd/system"
_ACTIVE = ("active", "activating", "reloading")


def digest(text: str) -> str:
    """What the Units fact reports for a unit file of this text."""
    return hashlib.sha256(text.encode()).hexdigest()


def reload_needed(before: Mapping[str, str | None], changed: Iterable[str]) -> bool:
    """Whether systemd must reload for the new unit files: it loads a file it has not seen
    when the unit is first used, so only a unit whose file existed (and may be loaded) needs
    it. A reload costs a few hundred milliseconds of systemd's CPU on every host."""
    return any(before.get(name) is not None for name in changed)


# A unit's privileged step that takes a file out of the account's runtime directory: read
# with the account's rights (`setpriv`), written by root (whatever stood at the target is
# removed first, never written through), checked, given its mode. `$$` is
# systemd's `$`; the values are arguments ($1 source, $2 target, $3 account), never code.
_TAKEN = (
    'rm -f "$$2" && /usr/bin/setpriv --reuid="$$3" --regid="$$3" --clear-groups cat -- "$$1"'
    ' >"$$2"'
    ' && {check} "$$2" && chmod {mode} "$$2"{chown}'
)


def taken_as_account(
    user: str, source: str, target: str, *, check: str, mode: str = "0644", own: bool = False
) -> str:
    """A unit's privileged (`+`) command that puts `source`, a file the unit's account made
    in its runtime directory, at `target` (in a directory of root's): the account reads it,
    so a link it put in the file's place reaches nothing it could not read itself (root
    never follows a path the account controls); `check` (a constant command taking the file
    as its last argument) must accept the copy, which then gets `mode` (and is the account's
    with `own`)."""
    body = _TAKEN.format(check=check, mode=mode, chown=' && chown "$$3:$$3" "$$2"' if own else "")
    return raw("/bin/sh -c {body} take {source} {target} {user}", body=body,
               source=source, target=target, user=user)  # fmt: skip


def first_use(command: str) -> str:
    """`command` (a start of units whose files may be new to systemd), retried after a reload
    where systemd is too old to load a new unit file by itself (before v246)."""
    return f"{{ {command} || {{ systemctl daemon-reload && {command}; }}; }}"


@operation()
def systemd_units(
    units: Sequence[str],
    *,
    files: Mapping[str, str] | None = None,
    running: bool | None = None,
    enabled: bool | None = None,
    restart_after: Sequence[Change] = (),
    keep_previous: bool = False,
    always_on: Sequence[str] = (),
    always_off: Sequence[str] = (),
) -> Commands:
    """
    Keep unit files as given, and the units running (or stopped) and enabled (or not).

    + units: the units whose state is kept, e.g. `["step-ca.service"]` or a host's timers
    + files: unit file name -> text, written to /etc/systemd/system (None: leave files alone);
      may name units that `units` does not (a timer's service)
    + running: True to start them (restarting a running one whose own file changed), False
      to stop them, None to leave them as they are
    + enabled: whether they start at boot (None: leave it)
    + restart_after: operations of this run whose change needs a restart of a running unit
    + keep_previous: keep each replaced unit file as `<file>.previous` (for a rollback)
    + always_on: more units kept running and enabled whatever `running` and `enabled` say
      (a timer that must run even where the others are switched off)
    + always_off: more units kept stopped and disabled where they exist (a timer that a
      setting switched off)
    """
    files = dict(files or {})
    units = [*units, *(u for u in [*always_on, *always_off] if u not in units)]
    found = memo.get_fact(host, Units, units=sorted({*units, *files}))
    changed = sorted(
        name for name, text in files.items() if found["files"].get(name) != digest(text)
    )
    commands = [
        (previous_kept(f"{UNIT_DIR}/{name}") + "; " if keep_previous else "")
        + replace_file(f"{UNIT_DIR}/{name}", files[name])
        for name in changed
    ]
    if reload_needed(found["files"], changed):
        commands.append("systemctl daemon-reload")
    states = found["states"]

    is_enabled = {u: states.get(u, {}).get("UnitFileState") == "enabled" for u in units}
    is_active = {u: states.get(u, {}).get("ActiveState") in _ACTIVE for u in units}
    wanted = {u: (running, enabled) for u in units}
    wanted |= {u: (True, True) for u in always_on} | {u: (False, False) for u in always_off}
    for state in (True, False):
        switch = [u for u in units if wanted[u][1] is state and state != is_enabled[u]]
        if switch:
            commands.append(
                raw(f"systemctl {'enable' if state else 'disable'} --no-reload {{u}}", u=switch)
            )
    start = [u for u in units if wanted[u][0] and not is_active[u]]
    restart_all = host.state.is_executing and any(m.did_change() for m in restart_after)
    restart = [u for u in units if wanted[u][0] and is_active[u] and (u in changed or restart_all)]
    stop = [u for u in units if wanted[u][0] is False and is_active[u]]
    # A unit kept off that failed (a package's service that could not start) is put back to
    # plain inactive: off, and no failure left to report.
    failed = [
        u
        for u in units
        if wanted[u][0] is False and states.get(u, {}).get("ActiveState") == "failed"
    ]
    if start:
        commands.append(first_use(raw("systemctl start {u}", u=start)))
    if restart:
        commands.append(raw("systemctl restart {u}", u=restart))
    if stop:
        commands.append(raw("systemctl stop {u}", u=stop))
    if failed:
        commands.append(raw("systemctl reset-failed {u}", u=failed))
    if commands:
        yield StringCommand("set -e; " + "; ".join(commands))
    else:
        host.noop(f"{', '.join(units)}: as configured")
