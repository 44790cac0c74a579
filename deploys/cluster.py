"""The whole system in one run: CA, trust, certificates, renewal, the etcd cluster.

pyinfra inventories/<environment>.py deploys/cluster.py
pyinfra inventories/<environment>.py deploys/cluster.py --limit etcd-k8s-4   # add a node
"""

from deploys.components.ca import certificate_authority
from deploys.components.certificates import certificates
from deploys.components.etcd import etcd_cluster
from deploys.components.ha import replicate_ca

certificate_authority(step_on_nodes=True)
certificates()
# After the certificates: issuing them writes to the CA's database.
replicate_ca()
etcd_cluster()
