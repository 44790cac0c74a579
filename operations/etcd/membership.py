"""Joining and leaving a running cluster: `etcdctl member add|remove` through another,
healthy member, run on that member's host and shown under it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from facts.etcd import EtcdCluster, EtcdMember, cluster_healthy
from facts.paths import ExistingPaths
from facts.shell import script
from operations import Commands
from operations.etcd.member import Etcdctl, Member
from operations.remote import Remote, RunTimeStep


def other_member(
    state: State, me: str, peers: Sequence[Member]
) -> tuple[Member, dict[str, Any]] | None:
    """The first other member whose etcd answers, with what it sees of the cluster.

    Reaches the member's host even when `--limit` left it out of the run's connections."""
    for peer in peers:
        if peer.host == me:
            continue
        other = state.inventory.get_host(peer.host)
        if not other.connected:
            other.connect(reason="to reach the etcd cluster", show_errors=False)
        if not other.connected:
            continue
        local = other.get_fact(
            EtcdMember, config=peer.config_path, data_dir=peer.data_dir, unit=peer.unit
        )
        if not (local["bootstrapped"] and local["active"]):
            continue  # not running yet: asking its etcd would only time out
        view = other.get_fact(EtcdCluster, etcdctl_args=peer.etcdctl.args)
        if view["members"]:
            return peer, view
    return None


def reconfigure(etcdctl: Etcdctl, verb: str, *args: str) -> StringCommand:
    """`etcdctl member <verb> <args>`. etcd refuses to change its membership until every
    member has been connected for a few seconds (e.g. right after a restart): that answer is
    retried for a minute, any other fails."""
    return script(
        "i=0; until out=$({c} member {verb} {args} 2>&1); do i=$((i+1));"
        ' case "$out" in *"unhealthy cluster"*) [ "$i" -lt 60 ] && sleep 1 && continue;;'
        ' esac; echo "$out" >&2; exit 1; done',
        c=etcdctl.args,
        verb=verb,
        args=list(args),
    )


def run_on(
    state: State, node: Remote, target: str, commands: Sequence[StringCommand], done: str
) -> bool:
    """Run time: commands on another host of the inventory, logged under that host."""
    other = Remote.of(state, target, f"to change the etcd membership for {node.name}")
    for command in commands:
        ok, output = other.run(command)
        if not ok:
            return other.fail(f"for {node.name}: {output.stderr}")
    other.log(f"for {node.name}: {done}")
    return True


def add_member(
    state: State, node: Remote, through: Member, me: Member, members: list[dict[str, Any]]
) -> bool:
    """Run time: `etcdctl member add` through a healthy member (a stale entry of the same
    name, left by a member whose data was lost, is removed first)."""
    stale = [m for m in members if m["name"] == me.name or me.peer_url in m["peer_urls"]]
    commands = [reconfigure(through.etcdctl, "remove", m["id"]) for m in stale]
    commands.append(reconfigure(through.etcdctl, "add", me.name, f"--peer-urls={me.peer_url}"))
    return run_on(state, node, through.host, commands, f"added {me.name} to the cluster")


@operation()
def member_removed(
    member: Member, *, peers: Sequence[Member], leftovers: Sequence[str], timers: Sequence[str]
) -> Commands:
    """
    Take this member out of the cluster and remove its unit, configuration and other files.

    + member: this member
    + peers: every member of the cluster (this one included)
    + leftovers: more files of the member to remove (certificates, keys, renewal units)
    + timers: units to stop and disable first (its renewal timers)

    `member remove` runs through another member (on its host, shown there). The cluster must
    be healthy and keep at least one other member. The data directory is kept aside as
    `<data dir>.removed` rather than deleted.
    """
    found = other_member(host.state, member.host, peers)
    mine: list[dict[str, Any]] = []
    if found is not None:
        other, view = found
        mine = [m for m in view["members"] if m["name"] == member.name]
        if mine:
            if len(view["members"]) < 2:
                raise OperationError(f"{member.name} is the last member: not removing it")
            if not cluster_healthy(view):
                raise OperationError(
                    f"the etcd cluster is unhealthy as {other.host} sees it: not removing "
                    f"{member.name} ({view['error'] or view['health']})"
                )
            command = reconfigure(other.etcdctl, "remove", mine[0]["id"])
            done = f"removed {member.name} from the cluster"
            yield RunTimeStep(run_on, other.host, [command], done)
    files = [member.config_path, f"/etc/systemd/system/{member.unit}", *leftovers]
    present = host.get_fact(ExistingPaths, paths=[*files, member.data_dir])
    if not present:
        if found is None or not mine:
            host.noop(f"{member.name} is no member and has nothing left")
        return
    yield script(
        "systemctl disable --now {unit} {timers} 2>/dev/null || true; rm -f {files};"
        " if [ -d {data} ]; then rm -rf {data}.removed; mv {data} {data}.removed; fi;"
        " systemctl daemon-reload",
        files=files,
        data=member.data_dir,
        unit=member.unit,
        timers=list(timers),
    )
