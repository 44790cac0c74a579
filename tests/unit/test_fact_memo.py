"""A run's memo of facts (facts/memo.py), with pyinfra's own state, operations and local
connector: a fact read again answers from the first read until an operation changes a host,
and from the host after that."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import Config, FactBase, Inventory, State, StringCommand, operation
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage

from etcd_step_pki.facts import memo


class Clock(FactBase[str]):
    """A value that differs on every read (nanoseconds), with an argument."""

    def command(self, label: str) -> str:
        return f"echo {label}-$(date +%s%N)"

    def process(self, output: list[str]) -> str:
        return output[0]


READS: list[str] = []


@operation()
def read_clock(label: str = "a") -> Any:
    """Reads the clock through the memo, yields nothing."""
    READS.append(memo.get_fact(host, Clock, label=label))
    host.noop("read")
    return
    yield


@operation()
def change() -> Any:
    yield StringCommand("true")


def _run(*ops: tuple[Any, dict[str, Any]]) -> list[str]:
    state = State(Inventory((["@local"], {})), Config())
    state.current_stage = StateStage.Prepare
    connect_all(state)
    for op, kwargs in ops:
        add_op(state, op, **kwargs)
    READS.clear()  # what adding the operations read (pyinfra may run them to plan)
    state.current_stage = StateStage.Execute
    run_ops(state)
    return list(READS)


def test_a_fact_read_again_answers_from_the_first_read_while_nothing_changed() -> None:
    first, again, other = _run((read_clock, {}), (read_clock, {}), (read_clock, {"label": "b"}))
    assert first == again
    assert other.startswith("b-")


def test_after_a_change_every_read_goes_to_the_host() -> None:
    before, after, later = _run((read_clock, {}), (change, {}), (read_clock, {}), (read_clock, {}))
    assert before != after != later
