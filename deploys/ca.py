"""Install, initialise and run step-ca on the cert-managers.

pyinfra inventories/<environment>.py deploys/ca.py
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.ca import certificate_authority
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("ca.py", data_defaults=DEFAULTS)
def ca() -> None:
    """Install, initialise and run step-ca on the cert-managers."""
    certificate_authority()


run_when_executed(globals(), ca)
