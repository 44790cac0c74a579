"""An etcd downgrade by one minor release (3.7 to 3.6, 3.6 to 3.5), through etcd's downgrade API.

pyinfra inventories/<environment>.py deploys/etcd_downgrade.py --data etcd_version=3.6.14

Set etcd_version to the release to go to (then keep it in the inventory). Through the first
member, `etcdctl downgrade validate` and `enable` (the cluster version drops to that minor
release at once, the storage follows); then the members get the older release one at a
time, the leader last, each waiting for a healthy cluster, and a member that does not start
goes back to the binary it ran. etcd ends the downgrade once every member runs the older
release. A run once it is done changes nothing. deploys/cluster.py refuses a lower minor
release and names this deploy.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.etcd import downgrade_enabled_on_the_cluster, etcd_cluster
from etcd_step_pki.deploys.settings import DEFAULTS, each_cluster


@deploy("etcd_downgrade.py", data_defaults=DEFAULTS)
def etcd_downgrade() -> None:
    """An etcd downgrade by one minor release, through etcd's downgrade API."""
    for _cluster in each_cluster():
        downgrade_enabled_on_the_cluster()
        etcd_cluster(downgrading=True)


run_when_executed(globals(), etcd_downgrade)
