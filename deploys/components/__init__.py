"""Reusable @deploy units that the entry points in deploys/ compose."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pyinfra.api import deploy

from deploys.settings import DEFAULTS
from operations.barrier import barrier

P = ParamSpec("P")
R = TypeVar("R")


def component(title: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A @deploy (with the settings' defaults) that every host leaves through one shared
    barrier: what any host does in it comes before what any host does after it."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @deploy(title, data_defaults=DEFAULTS)
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            result = func(*args, **kwargs)
            barrier(name=f"{title}: every host done", label=f"{title} done")
            return result

        # pyinfra types @deploy as returning a PyinfraOperation (an operation's signature, that
        # returns OperationMeta); the wrapper calls `run` and returns its result, R.
        return run  # type: ignore[return-value]

    return wrap
