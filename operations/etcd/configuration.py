"""A member's configuration file, and its first start: a new cluster, or a join.

A member's `initial-*` settings matter only on its first start, so they are left out of
change detection once the member holds data: adding a member later does not rewrite (and
restart) the others.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdMember, cluster_healthy
from etcd_step_pki.facts.shell import previous_kept, script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.etcd.membership import (
    peers_found,
    reconfigure,
    refuse_new_cluster,
    running,
    survey,
)
from etcd_step_pki.operations.etcd.restarts import wait_healthy
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.turns import turn
from etcd_step_pki.templates import render
from etcd_step_pki.templates.scripts import script as run_script


@dataclass(frozen=True)
class TLSFiles:
    """The certificate, key and trust files a member's configuration names."""

    peer_cert: str
    peer_key: str
    server_cert: str
    server_key: str
    peer_trust: str
    client_trust: str
    # The subject common name the peer port accepts (every peer certificate of the cluster
    # has it; operations/profiles.py); None: any certificate the peer trust accepts.
    peer_allowed_cn: str | None = None
    # The CA's certificate revocation list (DER): revoked certificates are refused on both
    # ports; None: no revocation check.
    crl: str | None = None
    # The DNS name a certificate needs on the client port (every client certificate of the
    # cluster has it; operations/profiles.py); None: any the trust accepts.
    client_allowed_hostname: str | None = None


@dataclass(frozen=True)
class MemberOptions:
    """What every member of a cluster is configured with besides its own name and address."""

    cluster_token: str
    tls: TLSFiles
    tls_min_version: str = "TLS1.2"
    cipher_suites: tuple[str, ...] = ()
    compaction_retention: str = "1h"
    # etcd's feature gates (3.6 and later): (name, enabled) pairs; (): etcd's defaults.
    feature_gates: tuple[tuple[str, bool], ...] = ()
    # etcd's /metrics and /health over plain HTTP on the member's address; None: none.
    metrics_port: int | None = None


def member_config(
    member: Member, options: MemberOptions, initial_cluster: str, initial_state: str
) -> str:
    """The member's environment file: etcd's settings as ETCD_* variables."""
    return render(
        "etcd.env.j2",
        name=member.name,
        data_dir=member.data_dir,
        address=member.address,
        peer_port=member.peer_port,
        client_port=member.client_port,
        tls=options.tls,
        tls_min_version=options.tls_min_version,
        cipher_suites=options.cipher_suites,
        initial_cluster=initial_cluster,
        initial_cluster_state=initial_state,
        cluster_token=options.cluster_token,
        compaction_retention=options.compaction_retention,
        feature_gates=options.feature_gates,
        metrics_port=options.metrics_port,
    )


INITIAL = "ETCD_INITIAL_"


def _steady(config: str) -> list[str]:
    """The lines that matter after the first start: all but `ETCD_INITIAL_*`."""
    return [line for line in config.splitlines() if not line.startswith(INITIAL)]


def _keep_initial(wanted: str, current: str) -> str:
    """`wanted` with the `ETCD_INITIAL_*` lines the member was bootstrapped with."""
    kept = iter(line for line in current.splitlines() if line.startswith(INITIAL))
    lines = [next(kept, line) if line.startswith(INITIAL) else line for line in wanted.splitlines()]
    return "\n".join(lines) + "\n"


@operation()
def member_configuration(
    member: Member, *, peers: Sequence[Member], options: MemberOptions
) -> Commands:
    """
    Keep the member's configuration (the one it replaces kept as `<config>.previous`, for a
    restart that fails); before its first start, write it for a new cluster only when that is
    safe.

    + member: this member
    + peers: every member of the cluster (this one included)
    + options: TLS files and settings every member shares

    A new cluster (`initial-cluster-state: new`, all members start together) only when every
    other member's host was reached and none holds a member's data. When a member of a
    running cluster answers, a new member joins it later, in `member_joined`. Any other
    case is refused with the reason: a host that cannot be reached, or members that hold
    data but do not run.
    """
    config_path = member.config_path
    local = memo.get_fact(
        host, EtcdMember, config=config_path, data_dir=member.data_dir, unit=member.unit
    )
    everyone = ",".join(f"{p.name}={p.peer_url}" for p in peers)
    if local["bootstrapped"] and local["config"] is not None:
        wanted = _keep_initial(member_config(member, options, everyone, "new"), local["config"])
        if _steady(wanted) == _steady(local["config"]):
            host.noop(f"{config_path} is as configured")
            return
        yield previous_kept(config_path)
        yield FileUploadCommand(StringIO(wanted), config_path)
        return
    if local["bootstrapped"]:
        raise OperationError(
            f"{member.data_dir} holds a member but {config_path} is missing: restore the "
            "configuration or remove the data directory to join afresh"
        )
    if not host.state.is_executing:
        yield FileUploadCommand(
            StringIO(member_config(member, options, everyone, "new")), config_path
        )
        return
    found = survey(host.state, member.host, peers)
    if running(found) is not None:
        host.noop(f"{member.name} joins the running cluster in the join step")
        return
    config = member_config(member, options, everyone, "new")
    refuse_new_cluster(member, found, config)
    # Every other member reached, none holds data of another cluster: a new cluster, every
    # member starts with the same list.
    yield script("install -d -m 0755 {d}", d=member.config_dir)
    yield FileUploadCommand(StringIO(config), config_path)


@operation()
def member_joined(
    member: Member, *, peers: Sequence[Member], options: MemberOptions, timeout: int = 120
) -> Commands:
    """
    A new member of a running cluster: `etcdctl member add --learner` through a healthy
    member (on that member's host, shown there), its configuration from etcd's answer,
    started, promoted to a voting member once it has caught up with the leader, and the
    cluster healthy again, before the next new member: new members take turns. A member that
    joined but is still a learner (its promotion timed out) is promoted by the next run.

    + member: this member
    + peers: every member of the cluster (this one included)
    + options: TLS files and settings every member shares
    + timeout: seconds to wait for the cluster's health once it started
    """
    local = memo.get_fact(
        host, EtcdMember, config=member.config_path, data_dir=member.data_dir, unit=member.unit
    )
    if local["bootstrapped"]:
        # Only a member that joined a running cluster can be a learner still; a learner
        # serves no membership requests: the others are asked.
        joined = "ETCD_INITIAL_CLUSTER_STATE=existing" in (local["config"] or "")
        others = replace(member.etcdctl, endpoint=",".join(
            f"https://{p.address}:{p.client_port}" for p in peers if p.name != member.name))  # fmt: skip
        view = memo.get_fact(host, EtcdCluster, etcdctl_args=others.args) if joined else None
        learner = [m for m in (view or {}).get("members", []) if m["name"] == member.name
                   and m["learner"]]  # fmt: skip
        if not learner:
            host.noop(f"{member.name} is a member already")
            return
        yield promote(others, learner[0]["id"], timeout)
        yield wait_healthy(member.etcdctl, timeout)
        return
    found = running(peers_found(host.state, member.host, peers))
    if found is None:
        host.noop(f"no member of {member.name}'s cluster runs: it starts with the others")
        return
    other, view = found
    if not cluster_healthy(view):
        raise OperationError(
            f"the etcd cluster is unhealthy as {other.host} sees it "
            f"({view['error'] or view['health']}): refusing to add {member.name}"
        )
    yield RunTimeStep(join, other, member, options, timeout)


_INITIAL = re.compile(r'^ETCD_INITIAL_CLUSTER="([^"]*)"$', re.MULTILINE)
_ADDED = re.compile(r"^Member\s+([0-9a-f]+)\s+added", re.MULTILINE)


def join(
    state: State, node: Remote, through: Member, me: Member, options: MemberOptions, timeout: int
) -> bool:
    """Run time: `member add` through a running member (a stale entry of the same name or
    peer URL, left by a member whose data was lost, is removed first), then this member's
    configuration with the cluster etcd answered, its start, and the cluster's health."""
    with turn(state, "etcd join"):
        return _join(node, Remote.of(state, through.host, f"to add {me.name}"), through, me,
                     options, timeout)  # fmt: skip


def _join(
    node: Remote, other: Remote, through: Member, me: Member, options: MemberOptions, timeout: int
) -> bool:
    view = other.fact(EtcdCluster, etcdctl_args=through.etcdctl.args)
    stale = [m for m in view["members"] if m["name"] == me.name or me.peer_url in m["peer_urls"]]
    for entry in stale:
        ok, output = other.run(reconfigure(through.etcdctl, "remove", entry["id"]))
        if not ok:
            return other.fail(f"for {me.name}: {output.stderr}")
    # A learner first: it receives the log but has no vote until it is promoted, so a
    # member that never catches up never counts toward the quorum.
    ok, output = other.run(
        reconfigure(through.etcdctl, "add", me.name, "--learner", f"--peer-urls={me.peer_url}")
    )
    found = _INITIAL.search(output.stdout)
    added = _ADDED.search(output.stdout)
    if not ok or not found or not added:
        return other.fail(f"adding {me.name} failed: {output.stderr or output.stdout}")
    other.log(f"added {me.name} to the cluster as a learner")
    config = member_config(me, options, found.group(1), "existing")
    ok, output = node.run(
        learner_start(me),
        stdin=config,
    )
    if not ok:
        return node.fail(f"{me.name} was added as a learner but did not start: {output.stderr}")
    ok, output = other.run(promote(through.etcdctl, added.group(1), timeout))
    if not ok:
        return other.fail(
            f"{me.name} runs as a learner but was not promoted (it has no vote; run again to "
            f"promote it once it has caught up): {output.stderr}"
        )
    other.log(f"promoted {me.name} to a voting member")
    ok, output = node.run(wait_healthy(me.etcdctl, timeout))
    if not ok:
        return node.fail(f"{me.name} joined but the cluster is not healthy: {output.stderr}")
    return True


def learner_start(me: Member) -> StringCommand:
    """The script that writes a new learner's configuration (from stdin) and starts it."""
    return run_script(
        "etcd-learner-start.sh.j2", config_dir=me.config_dir, config=me.config_path, unit=me.unit
    )


def promote(etcdctl: Etcdctl, member_id: str, timeout: int) -> StringCommand:
    """`member promote`, retried while etcd answers that the learner has not caught up with
    the leader yet (or that the cluster just changed), for `timeout` seconds."""
    return run_script(
        "etcd-member-change.sh.j2",
        etcdctl=etcdctl.args,
        args=["promote", member_id],
        retry_on=["in sync with leader", "unhealthy cluster"],
        tries=timeout,
        show=False,
    )
