"""The whole system in one run: CA, trust, certificates, renewal, the etcd cluster, and the
alert rules on the hosts of the `prometheus` group (deploys/monitoring.py).

pyinfra inventories/<environment>.py deploys/cluster.py
pyinfra inventories/<environment>.py deploys/cluster.py --limit etcd-k8s-4   # add a node

With several clusters on the CA (`etcd_clusters`), the CA and every host's certificates come
first, then the clusters one at a time (`--data etcd_cluster=<name>`: that one only).
"""

from deploys.components.ca import certificate_authority
from deploys.components.certificates import certificates
from deploys.components.etcd import etcd_cluster
from deploys.components.ha import replicate_ca
from deploys.components.monitoring import monitoring
from deploys.settings import each_cluster

certificate_authority(step_on_nodes=True)
certificates()
# After the certificates: issuing them writes to the CA's database.
replicate_ca()
for _cluster in each_cluster():
    etcd_cluster()
monitoring()
