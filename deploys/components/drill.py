"""Disaster-recovery drills: the CA restored into a throwaway place on a drill host and proven
to work, while nothing live changes."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api.operation import OperationMeta

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.arguments import key_file
from etcd_step_pki.deploys.components.ca_backup import kms_of, signer_key_of, store_of
from etcd_step_pki.deploys.settings import Settings, SettingsError, load_settings, time_setting
from etcd_step_pki.operations.ca_restore import fetched
from etcd_step_pki.operations.drill import DrillPlan, drilled

DEFAULT_PORT = 9443


def drill_host(settings: Settings) -> str:
    """The drill host: `drill_host`, else the first backup cert-manager."""
    managers = (settings.primary, *settings.backups)
    name = settings.run.drill_host or (settings.backups[0] if settings.backups else None)
    if name is None:
        raise SettingsError(
            "drill_host: there is no backup cert-manager to drill on; name a cert-manager"
        )
    if name not in managers:
        raise SettingsError(
            f"drill_host: {name!r} is no cert-manager (one of {', '.join(managers)})"
        )
    if (settings.run.drill_from or "replica") == "replica" and name == settings.primary:
        raise SettingsError(
            f"drill_host: {name} runs the live CA, whose state is no replica: drill on a "
            "backup cert-manager, or from S3 (--data drill_from=s3)"
        )
    return name


def _plan(settings: Settings) -> DrillPlan:
    """The drill on this host, its settings checked (before any host is touched)."""
    port = settings.run.drill_port or DEFAULT_PORT
    live = {settings.ca_port, settings.etcd.client_port, settings.etcd.peer_port}
    if port in live | {settings.etcd.metrics_port}:
        raise SettingsError(f"drill_port: {port} is a port of the live CA or etcd on {host.name}")
    certificates = settings.host_certificates
    if not certificates:
        raise SettingsError(
            f"drill_host: {host.name} holds no node certificate to renew a copy of: choose a "
            "cert-manager that is also a member or a client"
        )
    pin = arguments.pinned_root(settings)
    if not pin.fingerprint:
        raise SettingsError(
            "no pinned or recorded root to prove the drill's certificates against: set "
            "step_ca_root_fingerprint, or run deploys/cluster.py first"
        )
    return DrillPlan(
        ca_path=settings.ca_path,
        port=port,
        bin_dir=settings.bin_dir,
        provisioner=settings.ca_provisioner,
        live_root=settings.root_file,
        expect_root=pin.fingerprint,
        live_certificate=(certificates[0].crt, certificates[0].key),
        authority=arguments.authority(settings),
    )


@component("DR drill")
def drill() -> OperationMeta | None:
    """On the drill host: the CA restored from its replica (`drill_from=replica`, default)
    or from S3 (`drill_from=s3`, `ca_restore_key` or the latest), proven, timed, removed."""
    settings = load_settings()
    target = drill_host(settings)
    if host.name != target:
        return None
    plan = _plan(settings)
    before = time_setting("drill_before") if settings.run.drill_before else None
    if settings.run.drill_from != "s3":
        return drilled(name="DR drill from the replica", plan=plan, source="replica", before=before)
    kms = kms_of(settings)
    private_key = (
        None
        if kms
        else key_file("ca_restore_private_key", settings.run.ca_restore_private_key, "private")
    )
    backup = fetched(
        store_of(settings),
        settings.run.ca_restore_key or "latest",
        private_key=private_key,
        kms=kms,
        signer_key=signer_key_of(settings),
        allow_older=bool(settings.run.ca_restore_allow_older),
    )
    return drilled(
        name="DR drill from S3", plan=plan, source=backup.source, backup=backup, before=before
    )
