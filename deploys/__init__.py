"""Entry points: one pyinfra deploy file per job, each a @deploy function of the same name.

`pyinfra inventory.py deploys/cluster.py` runs the file; `pyinfra inventory.py
etcd_step_pki.cluster` and an operator's own deploy file (`from etcd_step_pki import cluster`,
then `cluster()`) call the function.
"""

from __future__ import annotations

from pathlib import Path

from pyinfra.context import ctx_state


def executed_by_pyinfra(file: str) -> bool:
    """Whether pyinfra is executing `file` as a deploy file, rather than something importing
    it: the file then calls its deploy, an import only defines it."""
    if not ctx_state.isset():
        return False
    running = ctx_state.get().current_exec_filename
    return running is not None and Path(running).resolve() == Path(file).resolve()
