"""A member's configuration file, and its first start: a new cluster, or a join.

A member's `initial-*` settings matter only on its first start, so they are left out of
change detection once the member holds data: adding a member later does not rewrite (and
restart) the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, operation

from facts.etcd import EtcdMember, cluster_healthy
from facts.shell import script
from operations import Commands
from operations.etcd.member import Member
from operations.etcd.membership import add_member, other_member
from operations.remote import RunTimeStep
from templates import render


@dataclass(frozen=True)
class TLSFiles:
    """The certificate, key and trust files a member's configuration names."""

    peer_cert: str
    peer_key: str
    server_cert: str
    server_key: str
    peer_trust: str
    client_trust: str


@dataclass(frozen=True)
class MemberOptions:
    """What every member of a cluster is configured with besides its own name and address."""

    cluster_token: str
    tls: TLSFiles
    tls_min_version: str = "TLS1.2"
    cipher_suites: tuple[str, ...] = ()
    compaction_retention: str = "1h"


def member_config(
    member: Member, options: MemberOptions, initial_cluster: str, initial_state: str
) -> str:
    return render(
        "etcd.conf.yml.j2",
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
    )


def _steady(config: str) -> list[str]:
    """The lines that matter after the first start: all but `initial-*`."""
    return [line for line in config.splitlines() if not line.startswith("initial-")]


def _keep_initial(wanted: str, current: str) -> str:
    """`wanted` with the `initial-*` lines the member was bootstrapped with."""
    kept = iter(line for line in current.splitlines() if line.startswith("initial-"))
    lines = [
        next(kept, line) if line.startswith("initial-") else line for line in wanted.splitlines()
    ]
    return "\n".join(lines) + "\n"


@operation()
def member_configuration(
    member: Member, *, peers: Sequence[Member], options: MemberOptions
) -> Commands:
    """
    Keep the member's configuration; on its first start, join the cluster it belongs to.

    + member: this member
    + peers: every member of the cluster (this one included)
    + options: TLS files and settings every member shares

    Before its first start a member looks for a running cluster through the other members:
    none answers, so the cluster is new and all members start together; one answers, so
    this member is added with `etcdctl member add` through it (run on that member's host,
    and shown there; refused while the cluster is unhealthy) and starts with
    `initial-cluster-state: existing`.
    """
    config_path = member.config_path
    local = host.get_fact(
        EtcdMember, config=config_path, data_dir=member.data_dir, unit=member.unit
    )
    everyone = ",".join(f"{p.name}={p.peer_url}" for p in peers)
    if local["bootstrapped"] and local["config"] is not None:
        wanted = _keep_initial(member_config(member, options, everyone, "new"), local["config"])
        if _steady(wanted) == _steady(local["config"]):
            host.noop(f"{config_path} is as configured")
            return
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
    found = other_member(host.state, member.host, peers)
    if found is None:
        # Nobody answers: a new cluster, every member starts with the same list.
        yield script("install -d -m 0755 {d}", d=member.config_dir)
        yield FileUploadCommand(
            StringIO(member_config(member, options, everyone, "new")), config_path
        )
        return
    other, view = found
    if not cluster_healthy(view):
        raise OperationError(
            f"the etcd cluster is unhealthy as {other.host} sees it "
            f"({view['error'] or view['health']}): refusing to add {member.name}"
        )
    existing = [m for m in view["members"] if m["name"] != member.name and m["name"]]
    initial = ",".join(
        [f"{m['name']}={m['peer_urls'][0]}" for m in existing]
        + [f"{member.name}={member.peer_url}"]
    )
    yield RunTimeStep(add_member, other, member, view["members"])
    yield script("install -d -m 0755 {d}", d=member.config_dir)
    yield FileUploadCommand(
        StringIO(member_config(member, options, initial, "existing")), config_path
    )
