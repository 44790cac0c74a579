"""A fake pyinfra host for operation unit tests: facts from fixtures, noops recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from unittest import mock

from pyinfra.api import StringCommand
from pyinfra.connectors.util import CommandOutput, OutputLine
from pyinfra.context import ctx_host, ctx_state

from etcd_step_pki.facts import memo


@dataclass
class FakeState:
    is_executing: bool = True


@dataclass
class FakeHost:
    """Answers `get_fact(Fact, **kwargs)` from `facts[Fact]` (a value or a callable)."""

    facts: dict = field(default_factory=dict)
    name: str = "etcd-k8s-1"
    noops: list[str] = field(default_factory=list)
    state: FakeState = field(default_factory=FakeState)
    fact_calls: list = field(default_factory=list)
    current_op_hash: str | None = "op"

    def get_fact(self, fact, **kwargs):
        self.fact_calls.append((fact, kwargs))
        value = self.facts[fact]
        return value(**kwargs) if callable(value) else value

    def noop(self, description: str) -> None:
        self.noops.append(description)


def _read(host: FakeHost, fact, **kwargs):
    return host.get_fact(fact, **kwargs)


@contextmanager
def on_host(fake: FakeHost) -> Iterator[FakeHost]:
    # Every read goes to the fixtures: a run's memo of facts (facts/memo.py) needs pyinfra's
    # own state, and has tests of its own.
    with ctx_state.use(fake.state), ctx_host.use(fake), mock.patch.object(memo, "get_fact", _read):
        yield fake


def run_op(op, fake: FakeHost, *args, **kwargs) -> list:
    """The commands an operation yields on the fake host."""
    with on_host(fake):
        return list(op._inner(*args, **kwargs))


def raw(commands: list) -> list[str]:
    return [c.get_raw_value() for c in commands if isinstance(c, StringCommand)]


@dataclass
class FakeRemote:
    """A host reached at run time (operations/remote.py): `answer(command, stdin)` gives each
    command's (ok, stdout, stderr); commands, log lines and failures are recorded."""

    answer: Callable[[str, str | None], tuple[bool, str, str]]
    name: str = "etcd-k8s-1"
    commands: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def run(self, command, *, stdin: str | None = None) -> tuple[bool, CommandOutput]:
        text = command if isinstance(command, str) else command.get_raw_value()
        self.commands.append(text)
        ok, stdout, stderr = self.answer(text, stdin)
        lines = [OutputLine("stdout", line) for line in stdout.splitlines()]
        lines += [OutputLine("stderr", line) for line in stderr.splitlines()]
        return ok, CommandOutput(lines)

    def log(self, message: str) -> None:
        self.logged.append(message)

    def fail(self, message: str) -> bool:
        self.failures.append(message)
        return False
