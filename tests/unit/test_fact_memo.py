"""A run's memo of facts (facts/memo.py), with pyinfra's own state, operations and local
connector: a fact read again answers from the first read until an operation changes a host,
and from the host after that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pyinfra import host
from pyinfra.api import Config, FactBase, Inventory, QuoteString, State, StringCommand, operation
from pyinfra.api.connect import connect_all
from pyinfra.api.operation import add_op
from pyinfra.api.operations import run_ops
from pyinfra.api.state import StateStage
from pyinfra.connectors.local import LocalConnector

from etcd_step_pki.facts import memo, prefetch


@pytest.fixture(autouse=True)
def _this_module_s_facts_batched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kept reads of this module's facts are read again (as those of the package are)."""
    monkeypatch.setattr(prefetch, "_PACKAGES", (*prefetch._PACKAGES, __name__))


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


class Printed(FactBase[list[str]]):
    """The lines of `text` as printed with `printf '%b'` (the output's shape, exactly)."""

    def command(self, text: str, status: int = 0) -> StringCommand:
        return StringCommand("printf", "%b", QuoteString(text), f"; exit {status}")

    def process(self, output: list[str]) -> list[str]:
        return output

    @staticmethod
    def default() -> list[str]:
        return ["(none)"]


SHAPES = ["one", "one\\n", "one\\ntwo", "one\\n\\n", "\\n", "", "\\n\\nthree\\n", "  x  "]


@operation()
def read_printed() -> Any:
    """Reads every shape of output through the memo, yields nothing."""
    for text in SHAPES:
        READS.append(repr(memo.get_fact(host, Printed, text=text)))
    host.noop("read")
    return
    yield


def _commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands the local connector runs from now on."""
    ran: list[str] = []
    original = LocalConnector.run_shell_command

    def counted(self: LocalConnector, command: Any, **kwargs: Any) -> Any:
        ran.append(str(command))
        return original(self, command, **kwargs)

    monkeypatch.setattr(LocalConnector, "run_shell_command", counted)
    return ran


def test_the_next_run_reads_what_the_last_one_read_in_one_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    ran = _commands(monkeypatch)
    first = _run((read_printed, {}), (read_clock, {}), (read_clock, {"label": "b"}))
    memo.keep_run_reads()
    alone = len(ran)
    ran.clear()
    second = _run((read_printed, {}), (read_clock, {}), (read_clock, {"label": "b"}))
    assert alone >= len(SHAPES) + 2
    assert len(ran) == 1
    assert second[: len(SHAPES)] == first[: len(SHAPES)]  # each shape read exactly
    assert second[len(SHAPES)].startswith("a-") and second[-1].startswith("b-")
    assert second[len(SHAPES)] != first[len(SHAPES)]  # read again, not kept


def test_a_read_that_fails_in_the_batch_is_read_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _run((read_clock, {}))
    memo.keep_run_reads()
    path = next(tmp_path.rglob("*.json"))
    failing = {"text": "x", "status": 1}
    read = {"fact": f"{__name__}:Printed", "arguments": json.dumps(failing)}
    path.write_text(json.dumps({"machine": None, "reads": [read]}))
    ran = _commands(monkeypatch)
    _run((read_clock, {}))
    assert len(ran) == 2  # the batch of the kept read, then the clock alone


def test_a_host_made_anew_under_the_same_name_reads_nothing_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _run((read_printed, {}))
    memo.keep_run_reads()
    _run((read_printed, {}))  # batched: the machine is known from now on
    memo.keep_run_reads()
    path = next(tmp_path.rglob("*.json"))
    kept = json.loads(path.read_text())
    assert kept["machine"] and len(kept["reads"]) == len(SHAPES)
    path.write_text(json.dumps({**kept, "machine": "another-machine"}))
    ran = _commands(monkeypatch)
    _run((read_printed, {}))
    # One command for the machine's id, then every read alone.
    assert len(ran) == 1 + len(SHAPES)
    memo.keep_run_reads()
    assert json.loads(path.read_text())["machine"] == kept["machine"]
