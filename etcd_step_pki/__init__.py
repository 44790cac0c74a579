"""pyinfra deploys that run the PKI of etcd clusters on Smallstep step-ca.

Every deploy of the checkout's deploys/ directory is a @deploy function of the same name:

    pyinfra inventory.py etcd_step_pki.cluster

or, in a deploy file of your own, `from etcd_step_pki import cluster` and `cluster()`. The
settings are host data (README, "Settings"); the functions take no arguments.
"""

from etcd_step_pki import planning
from etcd_step_pki.deploys.backup_ca import backup_ca
from etcd_step_pki.deploys.ca import ca
from etcd_step_pki.deploys.certs import certs
from etcd_step_pki.deploys.cluster import cluster
from etcd_step_pki.deploys.drill import drill
from etcd_step_pki.deploys.etcd_backup import etcd_backup
from etcd_step_pki.deploys.etcd_downgrade import etcd_downgrade
from etcd_step_pki.deploys.etcd_maintenance import etcd_maintenance
from etcd_step_pki.deploys.etcd_restore import etcd_restore
from etcd_step_pki.deploys.failover import failover
from etcd_step_pki.deploys.migrate_cfssl import migrate_cfssl
from etcd_step_pki.deploys.monitoring import monitoring
from etcd_step_pki.deploys.remove_node import remove_node
from etcd_step_pki.deploys.renew import renew
from etcd_step_pki.deploys.replicate_ca import replicate_ca
from etcd_step_pki.deploys.restore_ca import restore_ca
from etcd_step_pki.deploys.revoke import revoke
from etcd_step_pki.deploys.rotate_intermediate import rotate_intermediate
from etcd_step_pki.deploys.status import status

__all__ = [
    "backup_ca",
    "ca",
    "certs",
    "cluster",
    "drill",
    "etcd_backup",
    "etcd_downgrade",
    "etcd_maintenance",
    "etcd_restore",
    "failover",
    "migrate_cfssl",
    "monitoring",
    "remove_node",
    "renew",
    "replicate_ca",
    "restore_ca",
    "revoke",
    "rotate_intermediate",
    "status",
]

# pyinfra plans each operation faster with these (etcd_step_pki/planning.py).
planning.applied()
