"""Turns: one host at a time for the run-time step of an operation that runs on every host
at once.

A `_serial=True` operation also reads its facts host by host, so even a run with nothing to do
pays one round trip per host in sequence. An operation that runs in parallel and takes a turn
only for the step that must not overlap (a restart, a join) reads its facts on every host at
once and costs nothing more when nothing is due.
"""

from __future__ import annotations

from gevent.lock import Semaphore
from pyinfra.api.state import State

_turns: dict[tuple[int, str], Semaphore] = {}


def turn(state: State, what: str) -> Semaphore:
    """The lock that gives hosts their turn at `what`, one at a time, in this run."""
    key = (id(state), what)
    if key not in _turns:
        _turns[key] = Semaphore(1)
    return _turns[key]
