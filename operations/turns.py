"""Turns: one host at a time for the run-time step of an operation that runs on every host
at once.

A `_serial=True` operation also reads its facts host by host, so even a run with nothing to do
pays one round trip per host in sequence. An operation that runs in parallel and takes a turn
only for the step that must not overlap (a restart, a join) reads its facts on every host at
once and costs nothing more when nothing is due.

Hosts register whether they are due a turn when the operation's body runs; a host may also
ask to go last (an etcd leader: restarted after its followers, it hands leadership over once
in a rolling restart rather than once per member).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gevent
from gevent.lock import Semaphore
from pyinfra.api.host import Host
from pyinfra.api.state import State

# How long a host waits for the others to say whether they are due, and to go before it.
REGISTER_WAIT = 15.0
LAST_WAIT = 600.0


@dataclass
class _Turns:
    lock: Semaphore = field(default_factory=lambda: Semaphore(1))
    due: dict[str, bool] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)


_turns: dict[tuple[int, str], _Turns] = {}


def _of(state: State, what: str) -> _Turns:
    key = (id(state), what)
    if key not in _turns:
        if not any(run == id(state) for run, _ in _turns):
            _turns.clear()
        _turns[key] = _Turns()
    return _turns[key]


def turn(state: State, what: str) -> Semaphore:
    """The lock that gives hosts their turn at `what`, one at a time, in this run."""
    return _of(state, what).lock


def register(state: State, what: str, host_name: str, due: bool) -> None:
    """The operation's body on `host_name`: whether this host will take a turn at `what`."""
    _of(state, what).due[host_name] = due


@contextmanager
def last_turn_if(state: State, what: str, host: Host, last: Callable[[], bool]) -> Iterator[None]:
    """This host's turn at `what`; when `last()` says so (asked in the turn), it lets every
    other host due a turn go first."""
    turns = _of(state, what)
    running = [
        other.name
        for other in state.inventory.get_active_hosts()
        if host.current_op_hash in state.ops.get(other, {})
    ]
    deadline = time.monotonic() + REGISTER_WAIT
    while not set(running) <= set(turns.due) and time.monotonic() < deadline:
        gevent.sleep(0.05)

    def others_waiting() -> bool:
        return any(due and name != host.name and name not in turns.done
                   for name, due in turns.due.items())  # fmt: skip

    turns.lock.acquire()
    # Asked once: the hosts that go first do not make this one something else (a follower's
    # restart leaves the leader the leader).
    if others_waiting() and last():
        deadline = time.monotonic() + LAST_WAIT
        while others_waiting() and time.monotonic() < deadline:
            turns.lock.release()
            gevent.sleep(0.2)
            turns.lock.acquire()
    try:
        yield
    finally:
        turns.done.add(host.name)
        turns.lock.release()
