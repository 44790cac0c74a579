"""Example staging inventory: one member that is also the only cert-manager, one client.

Settings of this environment are in group_data/staging.py.
"""

etcd = [("etcd-stg-1", {"ssh_hostname": "10.9.1.10"})]
etcd_cert_managers = ["etcd-stg-1"]
etcd_clients = [("kube-apiserver-stg", {"ssh_hostname": "10.9.2.10"})]
