"""Trust, certificates and renewal timers on every etcd member and client (needs the CA).

pyinfra inventories/<environment>.py deploys/certs.py
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.certificates import certificates
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("certs.py", data_defaults=DEFAULTS)
def certs() -> None:
    """Trust, certificates and renewal timers on every etcd member and client (needs the CA)."""
    certificates()


run_when_executed(globals(), certs)
