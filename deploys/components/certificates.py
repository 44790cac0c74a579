"""Trust, leaf certificates and renewal units on every etcd member and client."""

from __future__ import annotations

import time
from collections.abc import Sequence

from pyinfra.api.operation import OperationMeta

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.binaries import step_binary
from etcd_step_pki.deploys.settings import (
    Settings,
    SettingsError,
    all_settings,
    load_settings,
    time_setting,
)
from etcd_step_pki.operations.accounts import system_account
from etcd_step_pki.operations.ca_probe import PROBE_UNIT, probe_script, probe_units
from etcd_step_pki.operations.certificates import Certificate, node_certificates
from etcd_step_pki.operations.every_ca import FIRST_CA, at_first_ca, first_ca_script
from etcd_step_pki.operations.installed_files import file_installed
from etcd_step_pki.operations.renewal import (
    METRICS_SCRIPT,
    metrics_script,
    metrics_written,
    renewed_now,
    timers,
    unit_files,
)
from etcd_step_pki.operations.revocation import (
    CRL_CHECK,
    CRL_METRICS,
    CRL_UNIT,
    crl_check_script,
    crl_current,
    crl_metrics_script,
    crl_metrics_written,
    crl_units,
    recorded_certificates_revoked,
)
from etcd_step_pki.operations.units import systemd_units


@component("Node certificates")
def certificates(reissue: str | None = None) -> OperationMeta | None:
    """step installed and bootstrapped, certificates issued where needed, renewal timers.

    `reissue` names why every certificate is issued again (an intermediate CA rotation).
    Returns the certificates' operation, for what has to follow a new certificate."""
    settings = load_settings()
    if not settings.holds_certificates:
        return None
    step_binary(settings)
    system_account(
        name="etcd user and group",
        user=settings.etcd_user,
        home="/var/lib/etcd",
        # Members' data directories (a distribution's package, installed later, makes its own).
        private_dirs=settings.data_dirs if owns_data_dir(settings) else [],
        # Root writes the certificates there: the account must not own it (a cfssl layout
        # may have given it away), or it could put links where root writes.
        root_dirs=[settings.ssl_dir],
    )
    issued = issue_certificates(settings, reissue=reissue)
    if settings.renewal.metrics_dir is not None:
        file_installed(
            name="Renewal metrics helper",
            dest=f"{settings.bin_dir}/{METRICS_SCRIPT}",
            text=metrics_script(arguments.step_node(settings), arguments.schedule(settings)),
            mode="0755",
        )
        metrics_written(
            name="Renewal metrics of every certificate",
            certificates=settings.host_certificates,
            node=arguments.step_node(settings),
            schedule=arguments.schedule(settings),
        )
    if settings.renewal.metrics_dir is not None:
        file_installed(
            name="CA probe",
            dest=f"{settings.bin_dir}/{PROBE_UNIT}",
            text=probe_script(settings.every_ca_url, settings.root_file),
            mode="0755",
        )
    if len(settings.every_ca_url) > 1:
        file_installed(
            name="The first CA that answers",
            dest=f"{settings.bin_dir}/{FIRST_CA}",
            text=first_ca_script(),
            mode="0755",
        )
    if settings.member_of_any:
        file_installed(
            name="Revocation list check",
            dest=f"{settings.bin_dir}/{CRL_CHECK}",
            text=crl_check_script(arguments.step_node(settings).chain_file, settings.crl_file),
            mode="0755",
        )
        if settings.renewal.metrics_dir is not None:
            file_installed(
                name="Revocation list metrics helper",
                dest=f"{settings.bin_dir}/{CRL_METRICS}",
                text=crl_metrics_script(settings.renewal.metrics_dir, settings.crl_file),
                mode="0755",
            )
    renewal_units(settings)
    if settings.member_of_any:
        revocation_list(settings)
        if settings.renewal.metrics_dir is not None:
            crl_metrics_written(
                name="Revocation list metrics", metrics_dir=settings.renewal.metrics_dir
            )
    return issued


def owns_data_dir(settings: Settings) -> bool:
    """Whether the account's operation makes members' data directories: with etcd from a
    release archive; a distribution's package resets /var/lib/etcd when it is installed."""
    return settings.member_of_any and settings.etcd.install_from == "archive"


def issue_certificates(
    settings: Settings,
    *,
    certificates: Sequence[Certificate] | None = None,
    trust_links: bool = True,
    reissue: str | None = None,
    issued_before: float | None = None,
) -> OperationMeta:
    """Trust and this host's certificates (default: of all its clusters), issued where
    needed."""
    return node_certificates(
        name="Trust and certificates",
        certificates=settings.host_certificates if certificates is None else certificates,
        sans=settings.sans,
        authority=arguments.authority(settings),
        node=arguments.step_node(settings),
        issuance=arguments.issuance(settings),
        now=time.time(),
        trust_links=trust_links,
        reissue=reissue,
        issued_before=issued_before,
    )


def renewal_units(
    settings: Settings, certificates: Sequence[Certificate] | None = None
) -> OperationMeta:
    """The renewal service and timer of each certificate (default: of all the host's
    clusters), the timers on or off; on a member, the revocation list's timer too, and with
    metrics the CA probe's, always on (whatever `renewal_enabled` says)."""
    enabled = settings.renewal.enabled
    items = settings.host_certificates if certificates is None else certificates
    files = unit_files(
        items,
        arguments.step_node(settings),
        settings.every_ca_url,
        arguments.schedule(settings),
    )
    always_on = []
    metrics_dir = settings.renewal.metrics_dir
    if settings.member_of_any:
        _, root, path = _crl(settings)
        # From whichever CA answers (several with ca_ha=active-active).
        first_ca, url = at_first_ca(settings.bin_dir, settings.every_ca_url)
        files |= crl_units(
            f"{url}/1.0/crl", root, path, settings.etcd_user, settings.bin_dir,
            metrics=metrics_dir is not None, first_ca=first_ca,
        )  # fmt: skip
        always_on.append(f"{CRL_UNIT}.timer")
    if metrics_dir is not None:
        interval = settings.renewal.probe_interval
        files |= probe_units(settings.etcd_user, settings.bin_dir, metrics_dir, interval)
        always_on.append(f"{PROBE_UNIT}.timer")
    return systemd_units(
        name="Renewal units",
        units=timers(items),
        files=files,
        running=enabled,
        enabled=enabled,
        always_on=always_on,
        # Metrics switched off: the probe stops (its last metrics stay where they were).
        always_off=[] if metrics_dir is not None else [f"{PROBE_UNIT}.timer"],
    )


def _crl(settings: Settings) -> tuple[str, str, str]:
    """The CA's revocation list, the root to read it with, and the member's copy."""
    return f"{settings.ca_url}/1.0/crl", settings.root_file, settings.crl_file


def revocation_list(settings: Settings) -> OperationMeta:
    """A member's copy of the CA's revocation list, which etcd checks every connection
    against, current now (a timer of the renewal units refreshes it hourly)."""
    url, root, path = _crl(settings)
    chain = arguments.step_node(settings).chain_file
    return crl_current(name="Revocation list", path=path, crl_url=url, root=root, chain=chain)


@component("Renew now")
def renew_now() -> None:
    """Renew the certificates issued before `renew_before` (ISO 8601 time, e.g.
    2026-11-28T06:00:00Z) on the hosts of the run; `renew_kinds` narrows them."""
    settings = load_settings()
    when = time_setting("renew_before")
    kinds = settings.run.renew_kinds or ("peer", "server", "client")
    if settings.holds_certificates:
        renewed_now(
            name="Renew certificates now",
            certificates=[c for c in settings.host_certificates if c.kind in kinds],
            node=arguments.step_node(settings),
            issued_before=when,
        )


@component("Revoke and issue again")
def revoke_and_reissue() -> None:
    """A compromised host: its certificates issued before `revoke_before` revoked at the CA
    and replaced by new ones with new keys made on the host (`revoke_host`)."""
    settings = load_settings()
    name = settings.run.revoke_host
    holders = {s.host for s in all_settings() if s.holds_certificates}
    if name not in holders:
        raise SettingsError(
            f"revoke_host: {name!r} is no inventory host with certificates"
            if name
            else "revoke_host: name the host with --data revoke_host=<inventory host>"
        )
    when = time_setting("revoke_before")
    if settings.host == name:
        # What to revoke comes from the CA's records of what it issued to the host (named by
        # the inventory), never from the host's own files: a compromised host may lie.
        recorded_certificates_revoked(
            name="Revoke the certificates issued before revoke_before",
            holder=arguments.holder(settings, all_settings()),
            authority=arguments.authority(settings),
            database=arguments.ca_database(settings),
            reason=f"{settings.host}: keys compromised, certificates issued again",
            code="keyCompromise",
            now=time.time(),
            issued_before=when,
        )
    # Every member refuses the revoked certificates at once.
    if settings.member_of_any:
        revocation_list(settings)
    # New keys and certificates replace the old ones in place (no moment without any).
    if settings.host == name:
        issue_certificates(settings, issued_before=when)
