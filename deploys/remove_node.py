"""Remove one etcd member (its node stays in the inventory until you take it out).

pyinfra inventories/<environment>.py deploys/remove_node.py --data etcd_remove_node=etcd-k8s-4
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.etcd import remove_member
from etcd_step_pki.deploys.components.ha import replicate_ca
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("remove_node.py", data_defaults=DEFAULTS)
def remove_node() -> None:
    """Remove one etcd member (its node stays in the inventory until you take it out)."""
    remove_member()
    # The revocations are in the CA's database: the backups take it (a failover keeps them).
    replicate_ca()


run_when_executed(globals(), remove_node)
