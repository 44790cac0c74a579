"""Restore an etcd snapshot onto every member as a new cluster (all data is replaced).

pyinfra inventories/<environment>.py deploys/etcd_restore.py
    --data etcd_restore_snapshot=backups/etcd/etcd-k8s-20261128.db --data etcd_restore_confirm=<sha256>
"""

from deploys.components.etcd import snapshot_restore

snapshot_restore()
