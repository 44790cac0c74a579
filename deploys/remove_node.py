"""Remove one etcd member (its node stays in the inventory until you take it out).

pyinfra inventories/<environment>.py deploys/remove_node.py --data etcd_remove_node=etcd-k8s-4
    its host down or gone: add --exclude etcd-k8s-4 (its host is cleaned up when it comes back
    and the deploy runs again without it)
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.ha import replicate_ca
from etcd_step_pki.deploys.components.removal import (
    member_taken_out,
    remove_member,
    removed_member_cleaned,
)
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("remove_node.py", data_defaults=DEFAULTS)
def remove_node() -> None:
    """Remove one etcd member (its node stays in the inventory until you take it out)."""
    remove_member()
    member_taken_out()
    removed_member_cleaned()
    # The revocations are in the CA's database: the backups take it (a failover keeps them).
    replicate_ca()


run_when_executed(globals(), remove_node)
