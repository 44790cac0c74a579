"""Reusable @deploy units that the entry points in deploys/ compose."""

from __future__ import annotations

import functools
from collections.abc import Callable

from pyinfra.api import deploy

from deploys.settings import DEFAULTS
from operations.barrier import barrier


def component(title: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A @deploy (with the settings' defaults) that every host leaves through one shared
    barrier: what any host does in it comes before what any host does after it."""

    def wrap(func: Callable[[], None]) -> Callable[[], None]:
        @deploy(title, data_defaults=DEFAULTS)
        @functools.wraps(func)
        def run() -> None:
            func()
            barrier(name=f"{title}: every host done", label=f"{title} done")

        return run

    return wrap
