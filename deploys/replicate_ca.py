"""Copy the primary's complete CA state to every backup cert-manager, encrypted in transit.

pyinfra inventories/<environment>.py deploys/replicate_ca.py
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import ha
from etcd_step_pki.deploys.components.ca import certificate_authority
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("replicate_ca.py", data_defaults=DEFAULTS)
def replicate_ca() -> None:
    """Copy the primary's complete CA state to every backup cert-manager, encrypted in transit."""
    certificate_authority()
    ha.replicate_ca()


run_when_executed(globals(), replicate_ca)
