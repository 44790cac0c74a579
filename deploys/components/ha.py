"""CA high availability: replication to the backups, and failover to one of them."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from pyinfra import host, logger, state
from pyinfra.api import operation
from pyinfra.api.exceptions import PyinfraError

from deploys.components import component
from deploys.settings import Settings, SettingsError, all_settings, load_settings
from facts.ca import CAHealth, IssuanceProof
from operations import Commands
from operations.replication import replicated


@component("Replicate the CA")
def replicate_ca() -> None:
    """Copy the primary's complete CA state to every backup cert-manager."""
    settings = load_settings()
    if settings.is_cert_manager and not settings.is_primary:
        replicated(
            name=f"CA state from {settings.primary}",
            primary=settings.primary,
            path=settings.ca_path,
        )


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


@operation()
def issuance_works(*, settings: Settings, old_primary: str) -> Commands:
    """
    Prove that the promoted CA issues and renews; say what to change in the inventory.

    + settings: the new primary's settings
    + old_primary: the cert-manager that was the primary
    """
    proof = host.get_fact(
        IssuanceProof,
        step=f"{settings.bin_dir}/step",
        ca_path=settings.ca_path,
        ca_url=settings.ca_url,
        provisioner=settings.ca_provisioner,
        subject="failover-proof",
    )
    if not proof["ok"]:
        raise PyinfraError(f"the promoted CA does not issue: {proof['detail']}")
    took = time.monotonic() - _started
    name = urlsplit(settings.ca_url).hostname
    host.log_styled(
        f"failover: {host.name} issues and renews certificates, {took:.1f}s after the run "
        f"started. Now make {host.name} the first host of etcd_cert_managers in the inventory "
        f"(nodes use {settings.ca_url}); where step_ca_url is a DNS name, point {name} at "
        f"{host.name}. Bring {old_primary} back only as a backup: deploys/replicate_ca.py "
        "then overwrites its state.",
        fg="green",
        log_func=logger.warning,
    )
    host.noop("issuance and renewal work")
    yield from ()
