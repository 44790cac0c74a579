"""Restore an etcd snapshot onto every member as a new cluster (all data is replaced).

pyinfra inventories/<environment>.py deploys/etcd_restore.py
    --data etcd_restore_snapshot=backups/etcd/etcd-k8s-20261128.db --data etcd_restore_confirm=<sha256>
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.etcd import snapshot_restore
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("etcd_restore.py", data_defaults=DEFAULTS)
def etcd_restore() -> None:
    """Restore an etcd snapshot onto every member as a new cluster (all data is replaced)."""
    snapshot_restore()


run_when_executed(globals(), etcd_restore)
