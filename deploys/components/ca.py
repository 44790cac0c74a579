"""step-ca on the cert-managers: active on the primary, installed and stopped on backups."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pyinfra.operations import files, systemd
from pyinfra.operations.util import any_changed

from deploys.components import component
from deploys.settings import Settings, ca_dns_names, load_settings
from operations import ca
from operations.binaries import release_binaries

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
UNIT = "/etc/systemd/system/step-ca.service"


@component("step-ca")
def certificate_authority() -> None:
    """Install step and step-ca on every cert-manager; initialise and run the CA on the
    primary; leave it installed, stopped and disabled on the backups."""
    settings = load_settings()
    if not settings.is_cert_manager:
        return
    binary, unit = install_step_ca(settings)
    if settings.is_primary:
        _primary(settings, [binary, unit])
    else:
        systemd.service(
            name="step-ca stays stopped on a backup cert-manager",
            service="step-ca.service",
            running=False,
            enabled=False,
        )


def install_step_ca(settings: Settings) -> list:
    """step and step-ca binaries and the step-ca unit: what every cert-manager has."""
    release_binaries(name="Install step", artifacts=[settings.step], bin_dir=settings.bin_dir)
    binary = release_binaries(
        name="Install step-ca", artifacts=[settings.step_ca], bin_dir=settings.bin_dir
    )
    unit = files.template(
        name="step-ca unit",
        src=str(TEMPLATES / "step-ca.service.j2"),
        dest=UNIT,
        mode="0644",
        path=settings.ca_path,
        bin_dir=settings.bin_dir,
        port=settings.ca_port,
    )
    systemd.daemon_reload(name="Reload systemd units", _if=unit.did_change)
    return [binary, unit]


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
    """step-ca restarted after a change, running, enabled, and healthy."""
    path = settings.ca_path
    name = urlsplit(settings.ca_url).hostname
    ca.restarted(
        name="Restart step-ca after a change",
        ca_name=name,
        port=settings.ca_port,
        root=f"{path}/certs/root_ca.crt",
        _if=any_changed(*changes),
    )
    systemd.service(
        name="step-ca runs and starts at boot",
        service="step-ca.service",
        running=True,
        enabled=True,
    )
    ca.healthy(
        name="step-ca is healthy",
        ca_name=name,
        port=settings.ca_port,
        root=f"{path}/certs/root_ca.crt",
    )
