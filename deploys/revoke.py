"""Day 2: a compromised host's certificates revoked at the CA and issued again with new keys.

pyinfra inventories/<environment>.py deploys/revoke.py \
    --data revoke_host=etcd-k8s-3 --data revoke_before=<now, ISO 8601>
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.certificates import revoke_and_reissue
from etcd_step_pki.deploys.components.ha import replicate_ca
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("revoke.py", data_defaults=DEFAULTS)
def revoke() -> None:
    """Day 2: a compromised host's certificates revoked at the CA and issued again with new keys."""
    revoke_and_reissue()
    # The revocations are in the CA's database: the backups take it (a failover keeps them).
    replicate_ca()


run_when_executed(globals(), revoke)
