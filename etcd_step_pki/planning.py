"""Faster planning on pyinfra 3.10: two of pyinfra's helpers, called for every operation on
every host, done again without their cost and with the same results.

- `get_operation_order_from_stack` orders operations by the line numbers of the code that
  called them. pyinfra takes them from `inspect.stack()`, which reads the source lines of
  every frame, then from `getframeinfo` of each frame, which reads them again: about 3 ms an
  operation here, 0.2 s of a `cluster.py` that changes nothing on four hosts, and more with
  every host. A frame's own file name and line number are the same values.
- `all_global_arguments` evaluates the type hints of pyinfra's argument classes on each call
  (some 260 calls, 0.1 s, in the same run); they do not change while pyinfra runs.

Applied to the pyinfra releases they were compared with (`CHECKED`; tests/unit/test_planning.py
compares each with pyinfra's own); any other release plans with its own helpers.
"""

from __future__ import annotations

import functools
import sys
from types import FrameType
from typing import Any

import pyinfra
from pyinfra.api import arguments, util

CHECKED = ("3.10.",)

# pyinfra's own, kept for the comparison.
pyinfra_operation_order = util.get_operation_order_from_stack
pyinfra_global_arguments = arguments.all_global_arguments


def operation_order(state: Any) -> list[int]:
    """pyinfra's `get_operation_order_from_stack`: the line numbers of the calls that led to
    this operation, from the deploy file's first frame on, less pyinfra's own frames."""
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(1)  # the caller's: pyinfra's frame of itself
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()
    start = 0
    if state.current_deploy_filename:
        # From the deploy file's first frame; none when it is not on the stack (pyinfra's
        # search then ends on its own frame, which it leaves out).
        names = [found.f_code.co_filename for found in frames]
        deploy = state.current_deploy_filename
        start = names.index(deploy) if deploy in names else len(frames)
    numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    for found in frames[start:]:
        if not found.f_code.co_filename.startswith(util.PYINFRA_INSTALL_DIR):
            numbers.append(found.f_lineno)
    return numbers


@functools.cache
def global_arguments() -> list[tuple[str, type]]:
    """pyinfra's `all_global_arguments`, evaluated once."""
    return pyinfra_global_arguments()


def applied() -> bool:
    """Use these helpers in pyinfra's place, when pyinfra's release is one they were checked
    with. True when they are in use."""
    if not pyinfra.__version__.startswith(CHECKED):
        return False
    util.get_operation_order_from_stack = operation_order
    # Imported by name there (and `pyinfra.api.operation` is also the decorator's name).
    vars(sys.modules["pyinfra.api.operation"])["get_operation_order_from_stack"] = operation_order
    arguments.all_global_arguments = global_arguments
    return True
