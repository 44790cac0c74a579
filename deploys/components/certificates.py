"""Trust, leaf certificates and renewal units on every etcd member and client."""

from __future__ import annotations

import datetime as dt
import time
from io import StringIO

from pyinfra import host
from pyinfra.operations import files, server

from deploys.components import component
from deploys.settings import SettingsError, load_settings
from operations.binaries import release_binaries
from operations.certificates import node_certificates
from operations.renewal import (
    METRICS_SCRIPT,
    metrics_script,
    renewal_units,
    renewed_now,
    unit_files,
)


@component("Node certificates")
def certificates() -> None:
    """step installed and bootstrapped, certificates issued where needed, renewal timers."""
    settings = load_settings()
    if not settings.needs_certificates:
        return
    release_binaries(name="Install step", artifacts=[settings.step], bin_dir=settings.bin_dir)
    server.group(name="etcd group", group=settings.etcd_user, system=True)
    server.user(
        name="etcd user",
        user=settings.etcd_user,
        group=settings.etcd_user,
        system=True,
        shell="/usr/sbin/nologin",
        home="/var/lib/etcd",
        create_home=False,
    )
    node_certificates(
        name="Trust and certificates",
        settings=settings,
        ca_url=settings.ca_url,
        now=time.time(),
    )
    if settings.renewal.metrics_dir is not None:
        files.put(
            name="Renewal metrics helper",
            src=StringIO(metrics_script(settings)),
            dest=f"{settings.bin_dir}/{METRICS_SCRIPT}",
            mode="0755",
        )
    renewal_units(
        name="Renewal units",
        files=unit_files(settings, settings.ca_url),
        enabled=settings.renewal.enabled,
    )


@component("Renew now")
def renew_now() -> None:
    """Renew the certificates issued before `renew_before` (ISO 8601 time, e.g.
    2026-11-28T06:00:00Z) on the hosts of the run; `renew_kinds` narrows them."""
    settings = load_settings()
    text = host.data.get("renew_before")
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            f"renew_before: {text!r} is no ISO 8601 time such as 2026-11-28T06:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise SettingsError(f"renew_before: {text!r} needs a time zone (Z or +01:00)")
    kinds = host.data.get("renew_kinds") or ["peer", "server", "client"]
    if isinstance(kinds, str):
        kinds = [k.strip() for k in kinds.split(",")]
    if not set(kinds) <= {"peer", "server", "client"}:
        raise SettingsError(f"renew_kinds: {kinds!r}: peer, server, client")
    if settings.needs_certificates:
        renewed_now(
            name="Renew certificates now",
            settings=settings,
            issued_before=when.timestamp(),
            kinds=kinds,
        )
