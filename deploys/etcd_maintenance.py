"""etcd maintenance (day-2): compact the history, defragment members one at a time.

    pyinfra inventories/<environment>.py deploys/etcd_maintenance.py
    pyinfra inventories/<environment>.py deploys/etcd_maintenance.py
        --data etcd_defrag_min_free_bytes=0

Members also compact on their own (`etcd_compaction_retention`, default 1h). With several
clusters, each in turn (`--data etcd_cluster=<name>`: that one only).
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.etcd import maintenance
from etcd_step_pki.deploys.settings import DEFAULTS, each_cluster


@deploy("etcd_maintenance.py", data_defaults=DEFAULTS)
def etcd_maintenance() -> None:
    """etcd maintenance (day-2): compact the history, defragment members one at a time."""
    for _cluster in each_cluster():
        maintenance()


run_when_executed(globals(), etcd_maintenance)
