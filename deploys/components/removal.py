"""An etcd member taken out of its cluster, its host up, down or gone (deploys/remove_node.py):
its certificates revoked from the CA's own records, every other member refusing them at once,
the member taken out through another member that answers, then its host cleaned up where the
run reaches it. With the host down, the run leaves it out: `--exclude <host>`."""

from __future__ import annotations

import time

from pyinfra import host

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.certificates import revocation_list
from etcd_step_pki.deploys.components.etcd import member_named
from etcd_step_pki.deploys.settings import (
    Settings,
    SettingsError,
    all_settings,
    load_settings,
    one_cluster,
)
from etcd_step_pki.operations.etcd.membership import member_left, member_removed
from etcd_step_pki.operations.renewal import timers
from etcd_step_pki.operations.revocation import recorded_certificates_revoked


def _target() -> Settings:
    """The member named by `etcd_remove_node`, in the cluster the run acts on."""
    one_cluster("remove_node.py")
    target = member_named(load_settings().run.etcd_remove_node, "etcd_remove_node")
    if len([s for s in all_settings() if s.is_member]) < 2:
        raise SettingsError("etcd_remove_node: the cluster would have no member left")
    return target


def _coordinator(target: Settings) -> str:
    """The host that acts for the cluster: the first other member of it in the run."""
    running = {h.name for h in host.state.inventory.get_active_hosts()}
    others = [s.host for s in all_settings() if s.is_member and s.host != target.host]
    chosen = [name for name in others if name in running]
    if not chosen:
        raise SettingsError(
            f"etcd_remove_node: no other member of etcd-{target.cluster} is in the run (with"
            " --limit, include one)"
        )
    return chosen[0]


@component("Remove an etcd member")
def remove_member() -> None:
    """Every certificate the CA issued to the member (each kind, every renewal and reissue)
    revoked at the CA, found in the CA's records: the member's host is not asked."""
    target = _target()
    if host.name != _coordinator(target):
        return
    recorded_certificates_revoked(
        name=f"Revoke the certificates of {target.node_name}",
        holder=arguments.holder(target, all_settings(), cluster=True),
        authority=arguments.authority(load_settings()),
        database=arguments.ca_database(load_settings()),
        reason=f"{target.node_name} removed from etcd-{target.cluster}",
        code="cessationOfOperation",
        now=time.time(),
    )


@component("Take out an etcd member")
def member_taken_out() -> None:
    """Every other member refuses the revoked certificates (its copy of the CA's revocation
    list, current); the member is taken out of the cluster through another member."""
    target = _target()
    settings = load_settings()
    if settings.member_of_any and host.name != target.host:
        revocation_list(settings)
    if host.name == _coordinator(target):
        member_left(
            name=f"Take {target.node_name} out of etcd-{target.cluster}",
            member=arguments.member(target),
            peers=arguments.members(all_settings()),
        )


@component("Clean up a removed member")
def removed_member_cleaned() -> None:
    """On the member's host, when the run reaches it: its unit stopped, its files removed,
    its data kept aside."""
    target = _target()
    if host.name != target.host:
        return
    leftovers = [path for item in target.certificates for path in (item.crt, item.key)]
    leftovers += [f"/etc/systemd/system/{item.unit}.{kind}" for item in target.certificates
                  for kind in ("service", "timer")]  # fmt: skip
    member_removed(
        name=f"Remove {target.node_name}",
        member=arguments.member(target),
        leftovers=leftovers,
        timers=timers(target.certificates),
        pairs=[item.pair for item in target.certificates],
    )
