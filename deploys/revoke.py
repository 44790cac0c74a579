"""Day 2: a compromised host's certificates revoked at the CA and issued again with new keys.

pyinfra inventories/<environment>.py deploys/revoke.py \
    --data revoke_host=etcd-k8s-3 --data revoke_before=<now, ISO 8601>
"""

from deploys.components.certificates import revoke_and_reissue
from deploys.components.ha import replicate_ca

revoke_and_reissue()
# The revocations are in the CA's database: the backups take it (a failover keeps them).
replicate_ca()
