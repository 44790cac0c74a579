"""Rotate the intermediate CA (day 2) and issue every leaf again under the new one.

    pyinfra inventories/<environment>.py deploys/rotate_intermediate.py
        --data rotate_before=2026-11-28T06:00:00Z

When the intermediate was issued before `rotate_before`, the primary makes a new one signed by
the same root (the old files are kept as *.replaced-<time>) and restarts step-ca; every node
then gets new certificates from it, the backups take the new CA state, and the members restart
one at a time, each waiting for a healthy cluster. The root does not change, so nothing stops
trusting anything. A second run with the same time changes nothing.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import rotation
from etcd_step_pki.deploys.components.certificates import certificates
from etcd_step_pki.deploys.components.etcd import restart_on_new_certificates
from etcd_step_pki.deploys.components.ha import replicate_ca
from etcd_step_pki.deploys.settings import DEFAULTS, each_cluster


@deploy("rotate_intermediate.py", data_defaults=DEFAULTS)
def rotate_intermediate() -> None:
    """Rotate the intermediate CA (day 2) and issue every leaf again under the new one."""
    reason = rotation.rotate_intermediate()
    issued = certificates(reissue=reason)
    replicate_ca()
    for _cluster in each_cluster():
        restart_on_new_certificates(issued)


run_when_executed(globals(), rotate_intermediate)
