"""Certificate, CA and etcd health report; changes nothing. Exits non-zero when anything
needs attention (a certificate missing or past its renewal point, a failed renewal, a
stopped renewal timer, step-ca unhealthy, a CA certificate expiring within
status_ca_expiry_days, etcd unhealthy).

    pyinfra inventories/<environment>.py deploys/status.py
    pyinfra inventories/<environment>.py deploys/status.py --data status_format=json
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import status as status_component
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("status.py", data_defaults=DEFAULTS)
def status() -> None:
    """Certificate, CA and etcd health report; changes nothing."""
    status_component.status()


run_when_executed(globals(), status)
