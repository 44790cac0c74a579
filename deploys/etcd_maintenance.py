"""etcd maintenance (day-2): compact the history, defragment members one at a time.

    pyinfra inventories/<environment>.py deploys/etcd_maintenance.py
    pyinfra inventories/<environment>.py deploys/etcd_maintenance.py
        --data etcd_defrag_min_free_bytes=0

Members also compact on their own (`etcd_compaction_retention`, default 1h). With several
clusters, each in turn (`--data etcd_cluster=<name>`: that one only).
"""

from deploys.components.etcd import maintenance
from deploys.settings import each_cluster

for _cluster in each_cluster():
    maintenance()
