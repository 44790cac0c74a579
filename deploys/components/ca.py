"""step-ca on the cert-managers: active on the primary, installed and stopped on backups."""

from __future__ import annotations

from urllib.parse import urlsplit

from pyinfra.api.operation import OperationMeta

from deploys.components import component
from deploys.settings import Settings, ca_dns_names, load_settings
from operations import ca
from operations.binaries import release_binaries
from operations.units import systemd_units
from templates import render

UNIT = "step-ca.service"


@component("step-ca")
def certificate_authority() -> None:
    """Install step and step-ca on every cert-manager; initialise and run the CA on the
    primary; leave it installed, stopped and disabled on the backups."""
    settings = load_settings()
    if not settings.is_cert_manager:
        return
    binary = install_step_ca(settings)
    if settings.is_primary:
        _primary(settings, [binary])
    else:
        keep_step_ca_stopped(settings)


def install_step_ca(settings: Settings) -> OperationMeta:
    """step and step-ca binaries, what every cert-manager has; returns step-ca's install."""
    release_binaries(name="Install step", artifacts=[settings.step], bin_dir=settings.bin_dir)
    return release_binaries(
        name="Install step-ca", artifacts=[settings.step_ca], bin_dir=settings.bin_dir
    )


def _unit_text(settings: Settings) -> str:
    return render(
        "step-ca.service.j2",
        path=settings.ca_path,
        bin_dir=settings.bin_dir,
        port=settings.ca_port,
    )


def keep_step_ca_stopped(settings: Settings) -> None:
    """A backup cert-manager: the unit in place, step-ca stopped and not started at boot."""
    systemd_units(
        name="step-ca stays stopped on a backup cert-manager",
        units=[UNIT],
        files={UNIT: _unit_text(settings)},
        running=False,
        enabled=False,
    )


def _primary(settings: Settings, changes: list) -> None:
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
    )
    config = ca.configuration(
        name="Configure ca.json",
        path=path,
        dns_names=names,
        port=settings.ca_port,
        db_type=settings.ca_db_type,
        durations=settings.durations,
    )
    ca.file_modes(name="CA file modes", path=path)
    run_step_ca(settings, [init, config, *changes])


def run_step_ca(settings: Settings, changes: list) -> None:
    """step-ca's unit in place, running (restarted after any of `changes`), enabled, and
    healthy before anything may issue."""
    systemd_units(
        name="step-ca runs, restarted after a change, and starts at boot",
        units=[UNIT],
        files={UNIT: _unit_text(settings)},
        running=True,
        enabled=True,
        restart_after=changes,
    )
    ca.healthy(
        name="step-ca is healthy",
        ca_name=urlsplit(settings.ca_url).hostname,
        port=settings.ca_port,
        root=f"{settings.ca_path}/certs/root_ca.crt",
    )
