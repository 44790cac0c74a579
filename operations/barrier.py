"""A barrier: one step that every host of a run takes at the same point.

pyinfra orders operations by each host's own sequence; an operation that only some hosts run
(the CA on the primary, replication on backups) is not ordered against the others' steps.
Every host calling `barrier` at the same line makes it one shared step: whatever any host
does before it runs before whatever any host does after it.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import operation

from etcd_step_pki.operations import Commands


@operation()
def barrier(label: str) -> Commands:
    """
    Wait here until every host has finished the steps before it; changes nothing.

    + label: what is complete at this point
    """
    host.noop(label)
    yield from ()
