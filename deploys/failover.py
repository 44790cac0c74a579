"""Promote a backup cert-manager when the primary is down.

    pyinfra inventories/<environment>.py deploys/failover.py --data ca_active=etcd-k8s-2

Checks that the primary is down (set failover_force=true to go on anyway), starts step-ca on
the backup, points every node's step CLI and renewal units at it, and proves that it issues
and renews. Then make the backup the first cert-manager of the inventory.
"""

from pyinfra import state
from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.ca import certificate_authority
from etcd_step_pki.deploys.components.certificates import certificates
from etcd_step_pki.deploys.components.ha import check_failover, failover_told, issuance_works
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("failover.py", data_defaults=DEFAULTS)
def failover() -> None:
    """Promote a backup cert-manager when the primary is down."""
    settings = check_failover()
    started = certificate_authority()
    promoted = settings.host == settings.primary
    if promoted and started is not None:
        issuance_works(settings, [started])
    issued = certificates()
    if promoted:
        old_primary = state.inventory.get_group("etcd_cert_managers")[0].name
        failover_told(settings, old_primary, [m for m in (started, issued) if m is not None])


run_when_executed(globals(), failover)
