"""Entry points: one pyinfra deploy file per job, each a @deploy function of the same name.

`pyinfra inventory.py deploys/cluster.py` runs the file; `pyinfra inventory.py
etcd_step_pki.cluster` and an operator's own deploy file (`from etcd_step_pki import cluster`,
then `cluster()`) call the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyinfra.context import ctx_state


def executed_by_pyinfra(namespace: dict[str, Any]) -> bool:
    """Whether pyinfra is executing the deploy file whose `globals()` this is, rather than
    something importing it: the file then calls its deploy, an import only defines it.

    pyinfra executes a deploy file in a namespace of its own holding `__file__` only, the name
    it records as the file being executed; an imported module's namespace has a `__spec__`.
    (The paths alone would not tell: `etcd_step_pki/deploys` links to `deploys/`.)"""
    if "__spec__" in namespace or not ctx_state.isset():
        return False
    running = getattr(ctx_state.get(), "current_exec_filename", None)
    return running is not None and running == namespace.get("__file__")


def run_when_executed(namespace: dict[str, Any], deployment: Callable[[], Any]) -> None:
    """Run a deploy file's @deploy function when pyinfra executes that file.

    Run as a file, its body runs without the deploy's own name layer, so operations read as
    the deploy file's output always has ("etcd | Rolling restart after a change", not
    "cluster.py | etcd | ..."): each component is itself a named @deploy with the settings'
    defaults. Called from an operator's own deploy file, the function keeps its name."""
    if executed_by_pyinfra(namespace):
        body: Callable[[], Any] = getattr(deployment, "_inner", deployment)
        body()
