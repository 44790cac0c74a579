"""Superseded CA keys and states, removed after their retention: a rotated intermediate's old
key and certificate (`*.replaced-<UTC time>`, operations/rotation.py) and the CA state a
restore replaced (`<CA path>.before-restore-<time>`, operations/ca_restore.py).

They are kept so that an operator can go back; kept for ever they are keys that no longer
serve and still sign. Their age is read from the time in their name (a copy keeps its
original's modification time).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FindDirectories

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAFiles
from etcd_step_pki.facts.shell import raw
from etcd_step_pki.operations import Commands

_REPLACED = re.compile(r"(?:certs|secrets)/[\w.-]+\.replaced-(\d{8}T\d{6}Z)")
_BEFORE_RESTORE = re.compile(r"\.before-restore-(\d{14})")


def _made(stamp: str) -> dt.datetime:
    """The UTC time of a name's stamp (`20261207T120000Z` or `20261207120000`)."""
    return dt.datetime.strptime(stamp.replace("T", "").rstrip("Z"), "%Y%m%d%H%M%S").replace(
        tzinfo=dt.UTC
    )


def expired(names: Iterable[tuple[str, str]], now: dt.datetime, days: int) -> list[str]:
    """The names (with their stamps) made more than `days` before `now`."""
    cutoff = now - dt.timedelta(days=days)
    return sorted(name for name, stamp in names if _made(stamp) < cutoff)


@operation()
def superseded_removed(path: str, *, days: int, now: float) -> Commands:
    """
    Remove what a rotation or a restore superseded on this cert-manager, `days` after it.

    + path: the CA's `$STEPPATH`
    + days: how long they are kept
    + now: the time their age is judged at (seconds since the epoch)
    """
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    replaced = [
        (f"{path}/{name}", match.group(1))
        for name in memo.get_fact(host, CAFiles, path=path)
        if (match := _REPLACED.fullmatch(name))
    ]
    parent, base = path.rstrip("/").rsplit("/", 1)
    aside = memo.get_fact(
        host, FindDirectories, path=parent or "/", maxdepth=1, fname=f"{base}.before-restore-*"
    )
    states = [
        (name, match.group(1))
        for name in aside or []
        if (match := _BEFORE_RESTORE.fullmatch(name.removeprefix(f"{parent}/{base}")))
    ]
    due = expired([*replaced, *states], when, days)
    if not due:
        host.noop(f"nothing superseded is older than {days} days")
        return
    # Removed, never followed: `rm -rf` takes a link itself, not what it points at.
    yield raw("rm -rf -- {paths}", paths=due)
