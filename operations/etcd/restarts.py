"""Gated rolling restarts and health: one member at a time, each only while every other
member is healthy, each followed by a wait for the whole cluster; a member that does not come
back goes back to its previous configuration and stops the run.

The operation runs on every member at once and the restarts take turns (operations/turns.py).
pyinfra counts failures only once every host ran the operation: a member whose restart failed
is recorded for the run, and the members after it refuse to restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdHealthy, EtcdMember, member_status
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Change, Commands
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.turns import last_turn_if, register
from etcd_step_pki.templates import url_host
from etcd_step_pki.templates.scripts import script as run_script

_failed: dict[int, list[str]] = {}
TURNS = "etcd restart"


def wait_healthy(etcdctl: Etcdctl, timeout: int) -> StringCommand:
    """The command that waits until every member answers healthy, or fails after `timeout`."""
    return run_script(
        "etcd-healthy-wait.sh.j2", etcdctl=etcdctl.args, tries=timeout * 2, timeout=timeout
    )


def _failures(state: State) -> list[str]:
    """The members whose restart failed in this run."""
    if id(state) not in _failed:
        _failed.clear()
        _failed[id(state)] = []
    return _failed[id(state)]


@operation()
def rolling_restart(
    member: Member,
    *,
    peers: Sequence[Member],
    etcdctl: Etcdctl | None = None,
    timeout: int = 120,
    restart_after: Sequence[Change] = (),
    files: Sequence[str] = (),
) -> Commands:
    """
    Restart a member (or start one that holds data but is stopped) while every other member
    is healthy, and wait until the whole cluster is healthy again; only when one of
    `restart_after` changed something in this run, or one of `files` changed after etcd
    started (a run killed between writing and restarting is finished by the next one).

    + member: this member
    + peers: every member of the cluster (this one included)
    + etcdctl: how to reach the cluster (default: the member's own etcdctl)
    + timeout: seconds to wait for health after the restart
    + restart_after: operations of this run whose change needs a restart
    + files: files the running etcd read when it started (configuration, unit, binary)

    Runs on every member at once: each reads its own state in parallel, and the members due
    a restart take turns, one at a time. A member that does not come back within `timeout`
    goes back to the previous version of its configuration and of each of `files` (kept as
    `<file>.previous` by the operations that replaced them) and is restarted on them, the run
    fails naming it and quoting its log, and no member after it restarts. Once a member runs
    healthy on its new files, their previous versions are removed. A member that never started is left
    to the start of a new cluster. A leader hands leadership over first.
    """
    local = memo.get_fact(
        host,
        EtcdMember,
        config=member.config_path,
        data_dir=member.data_dir,
        unit=member.unit,
        files=list(files),
    )
    changed = host.state.is_executing and any(meta.did_change() for meta in restart_after)
    started = local["started"]
    newer = [
        path
        for path, when in local["modified"].items()
        if local["active"] and started is not None and when > started
    ]
    due = local["bootstrapped"] and not (local["active"] and not (changed or newer))
    refused = host.state.is_executing and bool(_failures(host.state))
    register(host.state, TURNS, host.name, due and not refused)
    if not local["bootstrapped"]:
        host.noop(f"{member.name} has not started yet: it starts with the others")
        return
    if not due:
        host.noop(f"{member.name} runs on its current configuration")
        return
    if refused:
        raise OperationError(_refusal(member.name, _failures(host.state)))
    client = etcdctl or member.etcdctl
    command = restart_command(member, client, peers=peers, files=files, timeout=timeout)
    yield RunTimeStep(_restart, member, client, command, handover=bool(local["active"]))


def restart_command(
    member: Member, client: Etcdctl, *, peers: Sequence[Member], files: Sequence[str], timeout: int
) -> StringCommand:
    """The script of a member's turn: gate, restart, wait, and going back on failure."""
    others = [
        f"https://{url_host(p.address)}:{p.client_port}" for p in peers if p.name != member.name
    ]
    # The gate asks each other member itself (etcdctl adds up repeated --endpoints).
    return run_script(
        "etcd-rolling-restart.sh.j2",
        others=others,
        gate=[arg for arg in client.args if not arg.startswith("--endpoints=")],
        etcdctl=client.args,
        name=member.name,
        unit=member.unit,
        files=list(dict.fromkeys([member.config_path, *files])),
        tries=timeout * 2,
        timeout=timeout,
    )


def _refusal(name: str, failed: Sequence[str]) -> str:
    return f"not restarting {name}: {', '.join(failed)} did not come back in this run"


def handover_target(view: dict[str, Any], name: str) -> str | None:
    """The follower a leader called `name` hands leadership to: the one that has applied the
    most (no election while the leader is down; it drops writes while its target catches up).
    None when `name` is no leader or no other voting member is healthy."""
    own = member_status(view, name)
    healthy = {h["endpoint"] for h in view["health"] if h["healthy"]}
    others = [
        m["id"]
        for m in view["members"]
        if m["name"] != name and not m["learner"] and set(m["client_urls"]) & healthy
    ]
    if own is None or own["leader"] != own["id"] or not others:
        return None
    applied = {st["id"]: st.get("applied", 0) for st in view["status"]}
    return str(max(others, key=lambda other: applied.get(other, 0)))


def _restart(
    state: State,
    node: Remote,
    member: Member,
    client: Etcdctl,
    command: StringCommand,
    *,
    handover: bool,
) -> bool:
    """Run time, in this member's turn: the handover (decided now, from the cluster as the
    restarts before this one left it), then the gated restart. A failure is recorded so that
    no member after it restarts in this run."""

    def leads() -> bool:
        view = node.fact(EtcdCluster, etcdctl_args=client.args)
        return handover and handover_target(view, member.name) is not None

    # The leader goes last: one leadership transfer a rolling restart, not one a member
    # (a write in flight while leadership moves may stall until the client's deadline:
    # etcd drops the proposals it forwards then, etcd-io/etcd#8975).
    with last_turn_if(state, TURNS, node.host, leads):
        failed = _failures(state)
        if failed:
            return node.fail(_refusal(member.name, failed))
        if handover:
            view = node.fact(EtcdCluster, etcdctl_args=client.args)
            target = handover_target(view, member.name)
            if target is not None:
                node.run(script("{c} move-leader {id} >/dev/null", c=client.args, id=target))
        ok, output = node.run(command)
        if not ok:
            failed.append(member.name)
            return node.fail(output.stderr)
        return True


@operation()
def cluster_healthy_wait(etcdctl: Etcdctl, *, timeout: int = 120) -> Commands:
    """
    Wait until every member of the cluster is healthy, as this host's etcdctl sees it.

    + etcdctl: how this host reaches the cluster
    + timeout: seconds to wait
    """
    if memo.get_fact(host, EtcdHealthy, etcdctl_args=etcdctl.args):
        host.noop("the etcd cluster is healthy")
        return
    yield wait_healthy(etcdctl, timeout)
