"""Remove one etcd member (its node stays in the inventory until you take it out).

pyinfra inventories/<environment>.py deploys/remove_node.py --data etcd_remove_node=etcd-k8s-4
"""

from deploys.components.etcd import remove_member
from deploys.components.ha import replicate_ca

remove_member()
# The revocations are in the CA's database: the backups take it (a failover keeps them).
replicate_ca()
