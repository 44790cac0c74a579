"""Snapshot of the etcd data, kept on the member and fetched to the controller.

pyinfra inventories/<environment>.py deploys/etcd_backup.py
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.etcd import snapshot_backup
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("etcd_backup.py", data_defaults=DEFAULTS)
def etcd_backup() -> None:
    """Snapshot of the etcd data, kept on the member and fetched to the controller."""
    snapshot_backup()


run_when_executed(globals(), etcd_backup)
