"""Keeping a member's database small: compaction of the history, defragmentation."""

from __future__ import annotations

from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdCompacted, member_status
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.etcd.member import Member
from etcd_step_pki.operations.etcd.restarts import wait_healthy


def _own_status(member: Member) -> dict[str, Any]:
    view = memo.get_fact(host, EtcdCluster, etcdctl_args=member.etcdctl.args)
    own = member_status(view, member.name)
    if own is None:
        raise OperationError(f"{member.name} does not answer: {view['error']}")
    return own


@operation()
def compacted(member: Member) -> Commands:
    """
    Compact the cluster's history up to its current revision (run on one member).

    + member: the member to run etcdctl against
    """
    revision = int(_own_status(member)["revision"])
    args = member.etcdctl.args
    if memo.get_fact(host, EtcdCompacted, etcdctl_args=args, revision=revision):
        host.noop(f"history before revision {revision} is compacted already")
        return
    yield script("{c} compact {rev} --physical >/dev/null", c=args, rev=revision)


@operation()
def defragmented(member: Member, *, min_free_bytes: int, timeout: int = 120) -> Commands:
    """
    Defragment this member when its database holds at least `min_free_bytes` of free space.

    + member: this member
    + min_free_bytes: free space (db size minus size in use) that is worth a defragmentation
    + timeout: seconds to wait for cluster health afterwards

    Run with `_serial=True`: a member blocks while it defragments.
    """
    own = _own_status(member)
    free = int(own["db_size"]) - int(own["db_size_in_use"])
    if free < min_free_bytes:
        host.noop(f"{free} bytes free in the database: no defragmentation needed")
        return
    yield script("{c} defrag --command-timeout=60s >/dev/null", c=member.etcdctl.args)
    yield wait_healthy(member.etcdctl, timeout)
