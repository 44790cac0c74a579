"""Snapshot of the etcd data, kept on the member and fetched to the controller.

pyinfra inventories/<environment>.py deploys/etcd_backup.py
"""

from deploys.components.etcd import snapshot_backup

snapshot_backup()
