"""Rolling restarts and health: one member at a time, the cluster healthy before the next."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import StringCommand, operation

from facts.etcd import EtcdCluster, EtcdMember, cluster_healthy, member_status
from facts.shell import script
from operations import Commands
from operations.etcd.member import Etcdctl, Member

_WAIT_HEALTHY = (
    "i=0; until {etcdctl} endpoint health --cluster >/dev/null 2>&1; do i=$((i+1));"
    ' if [ "$i" -ge {tries} ]; then echo "etcd cluster not healthy after {timeout}s" >&2;'
    " {etcdctl} endpoint health --cluster >&2; exit 1; fi; sleep 0.5; done"
)


def wait_healthy(etcdctl: Etcdctl, timeout: int) -> StringCommand:
    """The command that waits until every member answers healthy, or fails after `timeout`."""
    return script(_WAIT_HEALTHY, etcdctl=etcdctl.args, tries=timeout * 2, timeout=timeout)


@operation()
def rolling_restart(
    member: Member, *, etcdctl: Etcdctl | None = None, timeout: int = 120
) -> Commands:
    """
    Restart a running member and wait until the whole cluster is healthy again.

    + member: this member
    + etcdctl: how to reach the cluster (default: the member's own etcdctl)
    + timeout: seconds to wait for health after the restart

    Run it with `_serial=True` so members restart one at a time; a member that is not
    running is left to the start that follows. A leader hands leadership over first.
    """
    local = host.get_fact(
        EtcdMember, config=member.config_path, data_dir=member.data_dir, unit=member.unit
    )
    if not local["active"]:
        host.noop(f"{member.unit} is not running: nothing to restart")
        return
    client = etcdctl or member.etcdctl
    view = host.get_fact(EtcdCluster, etcdctl_args=client.args)
    own = member_status(view, member.name)
    healthy = {h["endpoint"] for h in view["health"] if h["healthy"]}
    others = [
        m["id"]
        for m in view["members"]
        if m["name"] != member.name and not m["learner"] and set(m["client_urls"]) & healthy
    ]
    if own is not None and own["leader"] == own["id"] and others:
        # Hand leadership over first: no election while this member is down. The leader
        # drops writes while a handover waits for its target to catch up: hand it to the
        # follower that has applied the most.
        applied = {st["id"]: st.get("applied", 0) for st in view["status"]}
        target = max(others, key=lambda other: applied.get(other, 0))
        yield script("{c} move-leader {id} >/dev/null", c=client.args, id=target)
    yield script("systemctl restart {unit}", unit=member.unit)
    yield wait_healthy(client, timeout)


@operation()
def cluster_healthy_wait(etcdctl: Etcdctl, *, timeout: int = 120) -> Commands:
    """
    Wait until every member of the cluster is healthy, as this host's etcdctl sees it.

    + etcdctl: how this host reaches the cluster
    + timeout: seconds to wait
    """
    view = host.get_fact(EtcdCluster, etcdctl_args=etcdctl.args)
    if cluster_healthy(view):
        host.noop("the etcd cluster is healthy")
        return
    yield wait_healthy(etcdctl, timeout)
