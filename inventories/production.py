"""Example production inventory: three members, the first two are cert-managers, two clients.

Settings of this environment are in group_data/production.py.
"""

etcd = [
    ("etcd-k8s-1", {"ssh_hostname": "10.0.1.10"}),
    ("etcd-k8s-2", {"ssh_hostname": "10.0.1.11"}),
    ("etcd-k8s-3", {"ssh_hostname": "10.0.1.12"}),
]

# The first is the primary (step-ca runs there); the others are backups.
etcd_cert_managers = ["etcd-k8s-1", "etcd-k8s-2"]

etcd_clients = [
    ("kube-apiserver-1", {"ssh_hostname": "10.0.2.10"}),
    ("kube-apiserver-2", {"ssh_hostname": "10.0.2.11"}),
]
