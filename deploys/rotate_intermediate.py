"""Rotate the intermediate CA (day 2) and issue every leaf again under the new one.

    pyinfra inventories/<environment>.py deploys/rotate_intermediate.py
        --data rotate_before=2026-11-28T06:00:00Z

When the intermediate was issued before `rotate_before`, the primary makes a new one signed by
the same root (the old files are kept as *.replaced-<time>) and restarts step-ca; every node
then gets new certificates from it, the backups take the new CA state, and the members restart
one at a time, each waiting for a healthy cluster. The root does not change, so nothing stops
trusting anything. A second run with the same time changes nothing.
"""

from deploys.components.certificates import certificates
from deploys.components.etcd import restart_on_new_certificates
from deploys.components.ha import replicate_ca
from deploys.components.rotation import rotate_intermediate
from deploys.settings import each_cluster

reason = rotate_intermediate()
issued = certificates(reissue=reason)
replicate_ca()
for _cluster in each_cluster():
    restart_on_new_certificates(issued)
