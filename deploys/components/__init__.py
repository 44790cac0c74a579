"""Reusable @deploy units that the entry points in deploys/ compose."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.api.exceptions import PyinfraError

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.components.run_lock import run_lock
from etcd_step_pki.deploys.settings import DEFAULTS, load_settings
from etcd_step_pki.facts import memo
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations.barrier import barrier

P = ParamSpec("P")
R = TypeVar("R")


# pyinfra CLI options that run each host's operations without waiting for the other hosts:
# the barriers, rolling restarts and cross-host steps of these deploys need them all in step.
_UNORDERED = ("--serial", "--no-wait")


def stop_at_first_failure() -> None:
    """These deploys' run policy: a host failing in one phase stops the run before any later
    phase (pyinfra's fail percent 0), and the options that break the phases' order are
    refused before any host is touched."""
    given = [option for option in _UNORDERED if option in sys.argv[1:]]
    if given:
        raise PyinfraError(
            f"{' and '.join(given)}: these deploys run every operation on all hosts before the "
            "next (phases end at a barrier, members restart one at a time); run without it"
        )
    host.state.config.FAIL_PERCENT = 0
    # Without -y, pyinfra would ask whether to go on after a failure: these runs stop.
    host.state.should_raise_failed_hosts = None


def component(title: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A @deploy (with the settings' defaults) that every host leaves through one shared
    barrier: what any host does in it comes before what any host does after it."""

    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @deploy(title, data_defaults=DEFAULTS)
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            stop_at_first_failure()
            settings = load_settings()
            memo.expect(host, Units, units=arguments.managed_units(settings))
            run_lock(settings.run_lock_wait)
            result = func(*args, **kwargs)
            barrier(name=f"{title}: every host done", label=f"{title} done")
            return result

        # pyinfra types @deploy as returning a PyinfraOperation (an operation's signature, that
        # returns OperationMeta); the wrapper calls `run` and returns its result, R.
        return run  # type: ignore[return-value]

    return wrap
