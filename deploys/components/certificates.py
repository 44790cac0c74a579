"""Trust, leaf certificates and renewal units on every etcd member and client."""

from __future__ import annotations

import time

from pyinfra.operations import server

from deploys.components import component
from deploys.settings import load_settings
from operations.binaries import release_binaries
from operations.certificates import node_certificates
from operations.renewal import renewal_units, unit_files


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
    renewal_units(
        name="Renewal units",
        files=unit_files(settings, settings.ca_url),
        enabled=settings.renewal.enabled,
    )
