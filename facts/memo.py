"""Facts read once per run while nothing has changed: `get_fact(host, Fact, **kwargs)` answers
from this run's earlier read of the same fact with the same arguments, as long as no
operation of the run has executed a command on any host since; after the first change every
read goes to the host again, as `host.get_fact` does.

pyinfra 3 reads a fact each time an operation asks for it: a run that changes nothing reads
the same units, member state and CA state several times per host (one round trip each). A
change anywhere may change what any host reports (a member added, the CA state replicated),
so the memo holds only until the first one. An operation uses it only for what it reads
before it yields its first command (its own commands are not seen until it completes).

The first read on a host reads, in the same round trip, what the previous run of the same
command line read there (facts/prefetch.py).
"""

from __future__ import annotations

import atexit
import copy
import json
import weakref
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from pyinfra.api import FactBase
from pyinfra.api.arguments import pop_global_arguments
from pyinfra.api.host import Host
from pyinfra.api.state import BaseStateCallback, State

from . import prefetch

T = TypeVar("T")

# The global arguments that decide how a fact's command runs (as whom, with which shell).
_EXECUTION = (
    "_sudo",
    "_sudo_user",
    "_use_sudo_login",
    "_sudo_password",
    "_preserve_sudo_env",
    "_su_user",
    "_use_su_login",
    "_preserve_su_env",
    "_su_shell",
    "_doas",
    "_doas_user",
    "_shell_executable",
    "_chdir",
    "_env",
)


class _RunMemo:
    """The facts read so far in one run, and whether any operation has changed a host."""

    def __init__(self, state: State) -> None:
        self.state = state
        # Per fact read: the items of its `NARROWS` list it was read with, its value, and
        # the read as the next run makes it at once.
        self.values: dict[
            tuple[str, str, str, str], tuple[set[str], Any, prefetch.Read | None]
        ] = {}
        # Per host: the reads of this run, to keep for the next; whether its kept reads
        # have been read.
        self.reads: dict[str, dict[prefetch.Read, None]] = {}
        self.machines: dict[str, str | None] = {}  # what each host is (prefetch.Kept)
        self.prefetched: set[str] = set()
        # Per host and fact: the items the run's reads will ask for (`expect`).
        self.expected: dict[tuple[str, type[Any]], dict[str, list[str]]] = {}
        # How each host's facts run in each operation (None: before any), as pyinfra works
        # it out from the operation's arguments, the host's data and the config.
        self.execution: dict[tuple[str, str | None], str] = {}
        # Operations completed on a host since the last read, and whether any changed it.
        self.completed: list[tuple[Host, str]] = []
        self.changed = False

    def still_valid(self) -> bool:
        """No operation completed so far has executed a command."""
        while self.completed and not self.changed:
            host, op_hash = self.completed.pop()
            meta = self.state.get_op_data_for_host(host, op_hash).operation_meta
            self.changed = not meta.is_complete() or meta.executed
        if self.changed:
            self.values.clear()
        return not self.changed


_memos: weakref.WeakKeyDictionary[State, _RunMemo] = weakref.WeakKeyDictionary()


class _Watcher(BaseStateCallback):
    """Tells the run's memo of each operation a host completes."""

    @staticmethod
    def operation_host_success(
        state: State, host: Host, op_hash: Any, retry_count: int = 0
    ) -> None:
        # Called before pyinfra records the operation's commands: judged at the next read.
        _memos[state].completed.append((host, op_hash))

    @staticmethod
    def operation_host_error(
        state: State, host: Host, op_hash: Any, retry_count: int = 0, max_retries: int = 0
    ) -> None:
        _memos[state].changed = True  # what a failed operation did is not known


def _memo(state: State) -> _RunMemo:
    memo = _memos.get(state)
    if memo is None:
        memo = _memos[state] = _RunMemo(state)
        state.add_callback_handler(_Watcher())
    return memo


def _execution(memo: _RunMemo, host: Host, op_hash: str | None) -> str:
    """How facts run on `host` in the operation `op_hash` (None: with no operation's
    arguments, the host's own way)."""
    place = (host.name, op_hash)
    execution = memo.execution.get(place)
    if execution is None:
        current = dict((host.current_op_global_arguments if op_hash else None) or {})
        resolved, _ = pop_global_arguments(host.state, host, current)
        chosen = {name: resolved.get(name) for name in _EXECUTION}
        execution = memo.execution[place] = json.dumps(chosen, sort_keys=True, default=repr)
    return execution


def _key(
    memo: _RunMemo, host: Host, cls: type[FactBase[Any]], kwargs: dict[str, Any]
) -> tuple[str, str, str, str]:
    execution = _execution(memo, host, host.executing_op_hash)
    arguments = json.dumps(kwargs, sort_keys=True, default=repr)
    return host.name, f"{cls.__module__}.{cls.__qualname__}", arguments, execution


def _split(cls: type[FactBase[Any]], kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The fact's `NARROWS` argument, and its other arguments (what a read is known by)."""
    narrows: str | None = getattr(cls, "NARROWS", None)
    return narrows, {name: value for name, value in kwargs.items() if name != narrows}


def _prefetch(memo: _RunMemo, host: Host, holder: str | None = None) -> str | None:
    """At the first read on `host`: the reads the previous run made there, in one round
    trip, when this read runs the host's own way (the way the kept reads were made). With
    `holder`, the run's lock is taken in the same round trip: its answer, or None when
    nothing ran (no kept read), and nothing is kept unless the lock is taken."""
    memo.prefetched.add(host.name)
    if _execution(memo, host, host.executing_op_hash) != _execution(memo, host, None):
        return None
    current = dict(host.current_op_global_arguments or {})
    arguments, _ = pop_global_arguments(host.state, host, current)
    kept = prefetch.kept_reads(host.name)
    found = prefetch.read_all(host, kept, dict(arguments), holder)
    if holder is not None and found.lock != "taken":
        memo.prefetched.discard(host.name)  # read again once the lock is taken
        return found.lock
    memo.machines[host.name] = found.machine
    if not memo.still_valid():
        return found.lock  # another host changed while these were read
    for read, value in found.values.items():
        cls = read.fact_class()
        assert cls is not None  # read_all reads only the facts it finds
        narrows, common = _split(cls, json.loads(read.arguments))
        held = set(json.loads(read.arguments).get(narrows, ())) if narrows else set()
        memo.values[_key(memo, host, cls, common)] = (held, value, read)
    return found.lock


def locked_with_reads(host: Host, holder: str) -> str | None:
    """The run's lock on `host` taken together with the first reads (one round trip for
    both): the lock's answer (`taken`, `held <holder>`, `failed`), or None when there was no
    read to make with it (the caller takes the lock alone)."""
    memo = _memo(host.state)
    if host.name in memo.prefetched or not memo.still_valid():
        return None
    return _prefetch(memo, host, holder)


def _remember(memo: _RunMemo, host: Host, read: prefetch.Read | None) -> None:
    """Keeps a read made the host's own way for the next run's first read."""
    if read is not None and _execution(memo, host, host.executing_op_hash) == _execution(
        memo, host, None
    ):
        memo.reads.setdefault(host.name, {})[read] = None


def keep_run_reads() -> None:
    """Keeps the reads of every run of this process for the next (at exit)."""
    for memo in list(_memos.values()):
        for name, reads in memo.reads.items():
            kept = prefetch.Kept(memo.machines.get(name), list(reads))
            prefetch.keep_reads(name, kept)


atexit.register(keep_run_reads)


def expect(host: Host, cls: type[FactBase[Any]], **lists: Sequence[str]) -> None:
    """Reads of `cls` on `host` this run will ask for these items too (a fact whose
    `NARROWS` names that list argument): the first read takes them all, and the reads after
    it are answered from it, narrowed to what each asks, while nothing has changed."""
    memo = _memo(host.state)
    wanted = memo.expected.setdefault((host.name, cls), {})
    for name, items in lists.items():
        wanted[name] = sorted({*wanted.get(name, ()), *items})


def get_fact(host: Host, cls: type[FactBase[T]], **kwargs: Any) -> T:
    """`host.get_fact(cls, **kwargs)`, read once per run while no operation has changed a
    host (see the module's docstring for when an operation may use it)."""
    memo = _memo(host.state)
    narrows, common = _split(cls, kwargs)
    asked = set(kwargs.get(narrows, ())) if narrows else set()
    key = _key(memo, host, cls, common)
    if memo.still_valid() and key not in memo.values and host.name not in memo.prefetched:
        _prefetch(memo, host)
    if memo.still_valid() and key in memo.values:
        held, known, made = memo.values[key]
        if asked <= held:
            _remember(memo, host, made)
            return _narrowed(cls, cast(T, known), narrows, asked)
    read = dict(kwargs)
    if narrows:
        expected = memo.expected.get((host.name, cls), {}).get(narrows, ())
        read[narrows] = sorted(asked | set(expected))
    value = host.get_fact(cls, **read)
    made = prefetch.Read.of(cls, read)
    _remember(memo, host, made)
    if memo.still_valid():
        memo.values[key] = (set(read.get(narrows, ())) if narrows else set(), value, made)
    return _narrowed(cls, value, narrows, asked)


def _narrowed(cls: type[FactBase[T]], value: T, narrows: str | None, asked: set[str]) -> T:
    """A copy of `value` (callers may change what they get), narrowed to what was asked."""
    if narrows is None:
        return copy.deepcopy(value)
    return cls.narrowed(copy.deepcopy(value), asked)  # type: ignore[attr-defined, no-any-return]
