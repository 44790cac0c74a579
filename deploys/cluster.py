"""The whole system in one run: CA, trust, certificates, renewal, the etcd cluster, and the
alert rules on the hosts of the `prometheus` group (deploys/monitoring.py).

pyinfra inventories/<environment>.py deploys/cluster.py
pyinfra inventories/<environment>.py deploys/cluster.py --limit etcd-k8s-4   # add a node

With several clusters on the CA (`etcd_clusters`), the CA and every host's certificates come
first, then the clusters one at a time (`--data etcd_cluster=<name>`: that one only).
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.ca import certificate_authority
from etcd_step_pki.deploys.components.certificates import certificates
from etcd_step_pki.deploys.components.etcd import etcd_cluster
from etcd_step_pki.deploys.components.galera import galera_cluster
from etcd_step_pki.deploys.components.ha import replicate_ca
from etcd_step_pki.deploys.components.monitoring import monitoring
from etcd_step_pki.deploys.settings import DEFAULTS, each_cluster


@deploy("cluster.py", data_defaults=DEFAULTS)
def cluster() -> None:
    """The whole system: CA, trust, certificates, renewal, the etcd clusters, alert rules."""
    certificate_authority(step_on_nodes=True)
    # Active-active: the CA's Galera cluster, before the nodes' certificates and replication.
    galera_cluster()
    certificates()
    # After the certificates: issuing them writes to the CA's database.
    replicate_ca()
    for _cluster in each_cluster():
        etcd_cluster()
    monitoring()


run_when_executed(globals(), cluster)
