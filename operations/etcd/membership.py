"""Joining and leaving a running cluster: `etcdctl member add|remove` through another,
healthy member, run on that member's host and shown under it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdMember
from etcd_step_pki.facts.paths import ExistingPaths
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.templates.scripts import script as run_script


@dataclass(frozen=True)
class PeerState:
    """Another member as found at run time: its host reached over SSH or not, whether it
    holds a member's data and runs, and the cluster as its etcd sees it."""

    member: Member
    reachable: bool
    bootstrapped: bool = False
    active: bool = False
    view: dict[str, Any] | None = None
    config: str | None = None


def survey(state: State, me: str, peers: Sequence[Member]) -> list[PeerState]:
    """Every other member, reached even when `--limit` left its host out of the run."""
    return list(peers_found(state, me, peers))


def peers_found(state: State, me: str, peers: Sequence[Member]) -> Iterator[PeerState]:
    """The other members one at a time, each read only when asked for: a caller that needs
    one running member stops reading hosts at the first."""
    for peer in peers:
        if peer.host == me:
            continue
        other = state.inventory.get_host(peer.host)
        if not other.connected:
            other.connect(reason="to reach the etcd cluster", show_errors=False)
        if not other.connected:
            yield PeerState(peer, reachable=False)
            continue
        local = memo.get_fact(
            other, EtcdMember, config=peer.config_path, data_dir=peer.data_dir, unit=peer.unit
        )
        view = None
        if local["bootstrapped"] and local["active"]:
            view = memo.get_fact(other, EtcdCluster, etcdctl_args=peer.etcdctl.args)
        yield PeerState(peer, True, local["bootstrapped"], local["active"], view, local["config"])


def running(found: Iterable[PeerState]) -> tuple[Member, dict[str, Any]] | None:
    """The first member whose etcd answers with the cluster's members, and its view."""
    for peer in found:
        if peer.view and peer.view["members"]:
            return peer.member, peer.view
    return None


def bootstrap_lines(config: str | None) -> list[str]:
    """What makes members one new cluster: the same initial cluster, state and token."""
    keys = ("ETCD_INITIAL_CLUSTER=", "ETCD_INITIAL_CLUSTER_STATE=", "ETCD_INITIAL_CLUSTER_TOKEN=")
    return [line for line in (config or "").splitlines() if line.startswith(keys)]


def refuse_new_cluster(me: Member, found: Sequence[PeerState], config: str) -> None:
    """A new cluster is safe only when every other member was reached and none holds data,
    or holds only the data of this same new cluster (a creation that was interrupted before
    every member started: `config` is this member's configuration for it)."""
    unreachable = [p.member.host for p in found if not p.reachable]
    if unreachable:
        raise OperationError(
            f"cannot reach {', '.join(unreachable)}: not starting {me.name} as a new cluster "
            "(a running cluster there would be split); bring the host back, or take it out of "
            "the inventory"
        )
    ours = bootstrap_lines(config)
    stopped = [p.member.name for p in found if p.bootstrapped and bootstrap_lines(p.config) != ours]
    if stopped:
        raise OperationError(
            f"{', '.join(stopped)} hold(s) a member's data but etcd does not answer there: not "
            f"starting {me.name} as a new cluster; start the existing members first"
        )


def other_member(
    state: State, me: str, peers: Sequence[Member]
) -> tuple[Member, dict[str, Any]] | None:
    """The first other member whose etcd answers, with what it sees of the cluster."""
    return running(peers_found(state, me, peers))


def reconfigure(etcdctl: Etcdctl, verb: str, *args: str) -> StringCommand:
    """`etcdctl member <verb> <args>`, its answer on stdout. etcd refuses to change its
    membership until every member has been connected for a few seconds (e.g. right after a
    restart): that answer is retried for a minute, any other fails."""
    return run_script(
        "etcd-member-change.sh.j2",
        etcdctl=etcdctl.args,
        args=[verb, *args],
        retry_on=["unhealthy cluster"],
        tries=60,
        show=True,
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


@operation()
def member_left(member: Member, *, peers: Sequence[Member]) -> Commands:
    """
    Take a member out of its cluster through another member that answers, its own host up,
    down or gone: `etcdctl member remove` runs on that member's host, shown there.

    + member: the member to take out
    + peers: every member of the cluster (that one included)

    Every other member must be healthy, and one at least must remain. A member the cluster
    no longer lists is left alone; no other member answering fails the run.
    """
    found = other_member(host.state, member.host, peers)
    if found is None:
        raise OperationError(f"no other member of the cluster answers: {member.name} stays in it")
    other, view = found
    mine = [m for m in view["members"] if m["name"] == member.name]
    if not mine:
        host.noop(f"the cluster, as {other.host} sees it, has no member {member.name}")
        return
    if len(view["members"]) < 2:
        raise OperationError(f"{member.name} is the last member: not removing it")
    rest = [h for h in view["health"] if h["endpoint"] not in mine[0]["client_urls"]]
    if len(rest) < len(view["members"]) - 1 or not all(h["healthy"] for h in rest):
        raise OperationError(
            f"the other members are not all healthy as {other.host} sees them: not removing "
            f"{member.name} ({view['error'] or rest})"
        )
    command = reconfigure(other.etcdctl, "remove", mine[0]["id"])
    yield RunTimeStep(run_on, other.host, [command], f"removed {member.name} from the cluster")


@operation()
def member_removed(
    member: Member,
    *,
    leftovers: Sequence[str],
    timers: Sequence[str],
    pairs: Sequence[str] = (),
) -> Commands:
    """
    On the host of a member taken out of its cluster (`member_left`): its unit stopped and
    its unit, configuration and other files removed, the data directory kept aside as
    `<data dir>.removed` rather than deleted.

    + member: this member
    + leftovers: more files of the member to remove (certificates, keys, renewal units)
    + timers: units to stop and disable first (its renewal timers)
    + pairs: its certificates' links to their key pairs, removed with their generations
    """
    files = [member.config_path, f"/etc/systemd/system/{member.unit}", *leftovers]
    present = memo.get_fact(host, ExistingPaths, paths=[*files, *pairs, member.data_dir])
    if not present:
        host.noop(f"{member.name} has nothing left on this host")
        return
    yield removal(member, files=files, timers=timers, pairs=pairs)


def removal(
    member: Member, *, files: Sequence[str], timers: Sequence[str], pairs: Sequence[str] = ()
) -> StringCommand:
    """The script that stops a removed member and removes its files (its data kept aside)."""
    return run_script(
        "etcd-member-removed.sh.j2",
        files=list(files),
        data=member.data_dir,
        unit=member.unit,
        timers=list(timers),
        pairs=list(pairs),
    )
