"""step-ca on the cert-managers: active on the primary, installed and stopped on backups."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlsplit

from pyinfra.api.operation import OperationMeta

from etcd_step_pki.deploys.components import component
from etcd_step_pki.deploys.components.arguments import key_file, pinned_root
from etcd_step_pki.deploys.components.binaries import installed_with_step, run_binaries, step_binary
from etcd_step_pki.deploys.components.galera import database_prepared
from etcd_step_pki.deploys.settings import Settings, ca_dns_names, cluster_names, load_settings
from etcd_step_pki.operations import Change, ca, galera
from etcd_step_pki.operations.accounts import system_account
from etcd_step_pki.operations.binaries import release_binaries
from etcd_step_pki.operations.custody import superseded_removed
from etcd_step_pki.operations.galera_migration import records_moved
from etcd_step_pki.operations.root_key import root_key_offline
from etcd_step_pki.operations.units import systemd_units
from etcd_step_pki.templates import render


@component("step-ca")
def certificate_authority(*, step_on_nodes: bool = False) -> OperationMeta | None:
    """Install step and step-ca on every cert-manager; initialise and run the CA on the
    primary; leave it installed, stopped and disabled on the backups. Returns, on the
    primary, the operation that starts (or restarts) step-ca.

    `step_on_nodes`: install step on every other host that will hold certificates, and
    etcd's archive where it is needed, in the same operation (a run that deploys the whole
    system: one wave of installs, instead of three)."""
    settings = load_settings()
    if settings.is_cert_manager or (step_on_nodes and settings.holds_certificates):
        run_binaries(settings, everything=step_on_nodes)
    if not settings.is_cert_manager:
        return None
    binary = install_step_ca(settings)
    superseded_removed(
        name="Superseded CA keys and states",
        path=settings.ca_path,
        days=settings.superseded_retention_days,
        now=time.time(),
    )
    database_prepared(settings)
    if settings.is_primary:
        started = _primary(settings, [binary])
        root_key_kept_offline(settings)
        return started
    if not settings.active_active:
        # Active-active: step-ca starts on the state replication brings (components/ha.py).
        keep_step_ca_stopped(settings)
    root_key_kept_offline(settings)
    return None


def root_key_kept_offline(settings: Settings) -> None:
    """With `ca_root_key_offline`: no root key on this cert-manager's disks, the controller
    keeping it encrypted (operations/root_key.py)."""
    if settings.root_key.offline:
        root_key_offline(
            name="The root key offline",
            path=settings.ca_path,
            export_file=settings.root_key.file,
            recipient_key=key_file(
                "ca_backup_recipient_key", settings.backup.recipient_key, "public"
            ),
            primary=settings.is_primary,
        )


def install_step_ca(settings: Settings) -> Change:
    """step and step-ca binaries and step-ca's account, what every cert-manager has; returns
    what replaced step-ca in this run (a new step alone does not restart step-ca)."""
    step_binary(settings)
    database = f"{settings.ca_path}/{ca.DATABASE}"
    system_account(
        name="step-ca user and group",
        user=settings.ca_user,
        home=database,
        private_dirs=[database],
    )
    shared = installed_with_step(settings, "step-ca")
    if shared is not None:
        return shared
    return release_binaries(
        name="Install step-ca", artifacts=[settings.step_ca], bin_dir=settings.bin_dir
    )


def _step_ca_unit(
    settings: Settings, name: str, active: bool, changes: Sequence[Change] = ()
) -> OperationMeta:
    """step-ca's unit file in place; step-ca running and enabled, or stopped and disabled."""
    text = step_ca_unit(settings)
    return systemd_units(
        name=name,
        units=[ca.UNIT],
        files={ca.UNIT: text},
        running=active,
        enabled=active,
        restart_after=changes,
    )


def keep_step_ca_stopped(settings: Settings) -> None:
    """A backup cert-manager: the unit in place, step-ca stopped and not started at boot."""
    _step_ca_unit(settings, "step-ca stays stopped on a backup cert-manager", active=False)


def _primary(settings: Settings, changes: list[Change]) -> OperationMeta:
    path = settings.ca_path
    names = ca_dns_names(settings)
    init = ca.authority(
        name="Initialise the CA",
        path=path,
        ca_name=settings.ca_name,
        dns_names=names,
        port=settings.ca_port,
        provisioner=settings.ca_provisioner,
        bin_dir=settings.bin_dir,
        root_pin=pinned_root(settings),
    )
    if settings.active_active:
        # A CA of the standby layout: its records first (step-ca stopped until ca.json
        # names the database).
        records_moved(name="The CA's records move to the Galera database", path=path)
    config = ca.configuration(
        name="Configure ca.json and file modes",
        path=path,
        dns_names=names,
        port=settings.ca_port,
        db_type=settings.ca_db_type,
        durations=settings.durations,
        provisioner=settings.ca_provisioner,
        profiles=settings.ca_profiles,
        names=cluster_names(),
        modes=True,
        ca_user=settings.ca_user,
        records_moved=settings.active_active,
    )
    return run_step_ca(settings, [init, config, *changes])


def run_step_ca(settings: Settings, changes: Sequence[Change]) -> OperationMeta:
    """step-ca's unit in place, running (restarted after any of `changes`), enabled, and
    healthy before anything may issue. Returns the unit's operation."""
    started = _step_ca_unit(
        settings, "step-ca runs, restarted after a change, and starts at boot", True, changes
    )
    ca.healthy(
        name="step-ca is healthy",
        # Settings accept only a step_ca_url with a host.
        ca_name=cast(str, urlsplit(settings.ca_url).hostname),
        port=settings.ca_port,
        root=f"{settings.ca_path}/certs/root_ca.crt",
    )
    return started


def step_ca_unit(settings: Settings) -> str:
    """The text of step-ca's systemd unit."""
    return render(
        "step-ca.service.j2",
        path=settings.ca_path,
        bin_dir=settings.bin_dir,
        port=settings.ca_port,
        user=settings.ca_user,
        runtime="step-ca",
        source="/run/step-ca-source",
        # Active-active: MariaDB's socket directory (operations/galera.py).
        database=galera.SOCKET.rsplit("/", 1)[0] if settings.active_active else None,
    )
