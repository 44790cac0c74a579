"""CA high availability: replication to the backups, and failover to one of them."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from pyinfra import host, logger, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import python
from pyinfra.operations.util import any_changed

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.ca import run_step_ca
from etcd_step_pki.deploys.settings import Settings, SettingsError, all_settings, load_settings
from etcd_step_pki.facts.ca import CAHealth
from etcd_step_pki.operations import ca
from etcd_step_pki.operations.replication import replicated


@component("Replicate the CA")
def replicate_ca() -> None:
    """Copy the primary's complete CA state to every backup cert-manager."""
    settings = load_settings()
    if settings.is_cert_manager and not settings.is_primary:
        copied = replicated(
            name=f"CA state from {settings.primary}",
            primary=settings.primary,
            path=settings.ca_path,
            pin=arguments.pinned_root(settings),
        )
        if settings.active_active:
            # Every cert-manager serves, on the records all share (the Galera database).
            run_step_ca(settings, [copied])


_started = time.monotonic()


def check_failover() -> Settings:
    """Before any change: a backup is named, and the primary is down (unless forced)."""
    settings = load_settings()
    if settings.run.ca_active is None:
        raise SettingsError(
            "ca_active: name the backup cert-manager to promote, e.g. --data ca_active=etcd-k8s-2"
        )
    managers = [h.name for h in state.inventory.get_group("etcd_cert_managers")]
    old = managers[0]
    if settings.primary == old or host.name != settings.primary:
        # Already first in the inventory: a failover done before; converge, refuse nothing.
        return settings
    old_settings = next(s for s in all_settings() if s.host == old)
    health = host.get_fact(
        CAHealth,
        ca_name=old,
        port=settings.ca_port,
        root=f"{settings.ca_path}/certs/root_ca.crt",
        address=old_settings.addresses[0] if old_settings.addresses else None,
    )
    if health["ok"] and not settings.run.failover_force:
        raise PyinfraError(
            f"the primary {old} is healthy as {host.name} sees it: not failing over "
            "(set failover_force=true to fail over anyway; its step-ca is then stopped)"
        )
    logger.warning(f"failover: {old} is down ({health['detail'][:120]}); promoting {host.name}")
    return settings


def failover_message(settings: Settings, old_primary: str, took: float) -> str:
    """What the operator does next: the name to re-point (where nodes reach the CA by a name
    of its own) and the inventory change."""
    name = urlsplit(settings.ca_url).hostname or ""
    promoted = settings.host
    address = settings.addresses[0] if settings.addresses else promoted
    steps = (
        f"nodes now reach the CA at {settings.ca_url}"
        if name in (promoted, *settings.addresses)
        else f"point the name {name} at {promoted} ({address}) wherever nodes resolve it (DNS, "
        "or /etc/hosts on every node and client): until then renewals go to the old primary"
    )
    return (
        f"failover: {promoted} issues and renews certificates, {took:.1f}s after the run "
        f"started. Next: {steps}; make {promoted} the first host of etcd_cert_managers in the "
        f"inventory (and drop ca_active). Bring {old_primary} back only as a backup: "
        "deploys/replicate_ca.py then overwrites its state."
    )


def issuance_works(settings: Settings, changes: list[OperationMeta]) -> None:
    """When this run promoted the CA (one of `changes` changed something), prove at
    execution that it issues and renews, before the nodes read its revocation list (the
    proof revokes what it issued). A run that finds the failover done changes nothing."""
    ca.issuance_proven(
        name="Issuance and renewal work on the promoted CA",
        path=settings.ca_path,
        port=settings.ca_port,
        provisioner=settings.ca_provisioner,
        bin_dir=settings.bin_dir,
        _if=any_changed(*changes),
    )


def failover_told(settings: Settings, old_primary: str, changes: list[OperationMeta]) -> None:
    """When this run promoted the CA, say what to do now."""
    python.call(
        name="What to change now",
        _if=any_changed(*changes),
        function=lambda: host.log_styled(
            failover_message(settings, old_primary, time.monotonic() - _started),
            fg="green",
            log_func=logger.warning,
        ),
    )
