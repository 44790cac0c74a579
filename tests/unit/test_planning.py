"""etcd_step_pki/planning.py: the helpers that replace two of pyinfra's give pyinfra's own
results, and they are in use on the pyinfra release installed."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pyinfra
import pytest
from pyinfra.api import arguments, util

from etcd_step_pki import planning


@dataclass
class _State:
    current_deploy_filename: str | None
    current_op_file_number: int = 7


def _nested(state: _State, depth: int) -> tuple[list[int], list[int]]:
    """Both orders, taken from the same frame (one line: the frame's line number is the same)."""
    if depth:
        return _nested(state, depth - 1)
    return planning.pyinfra_operation_order(state), planning.operation_order(state)


@pytest.mark.parametrize("deploy_file", [__file__, None, "/nowhere/deploy.py"])
@pytest.mark.parametrize("is_cli", [True, False])
def test_the_operation_order_is_pyinfras(
    deploy_file: str | None, is_cli: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pyinfra, "is_cli", is_cli)
    theirs, ours = _nested(_State(deploy_file), 3)
    assert ours == theirs
    cli = [7] if is_cli else []
    if deploy_file == "/nowhere/deploy.py":
        assert ours == cli
    else:  # the deploy file's frames, then the four of _nested's
        assert ours[: len(cli)] == cli and len(ours) >= len(cli) + 5


def test_the_global_arguments_are_pyinfras() -> None:
    assert planning.global_arguments() == planning.pyinfra_global_arguments()


def test_the_helpers_are_in_use_on_this_pyinfra() -> None:
    """An upgrade of pyinfra fails here: compare the helpers with its own, then add it to
    CHECKED."""
    assert pyinfra.__version__.startswith(planning.CHECKED)
    assert util.get_operation_order_from_stack is planning.operation_order
    operation = sys.modules["pyinfra.api.operation"]
    assert operation.get_operation_order_from_stack is planning.operation_order
    assert arguments.all_global_arguments is planning.global_arguments
