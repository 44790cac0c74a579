"""The CA's database with `ca_ha=active-active`: MariaDB with Galera on every cert-manager,
the arbitrator where one is named (operations/galera.py says how a cluster comes up)."""

from __future__ import annotations

import time

from pyinfra.operations import apt

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.binaries import step_binary
from etcd_step_pki.deploys.settings import Settings, load_settings
from etcd_step_pki.operations import galera, galera_metrics
from etcd_step_pki.operations.accounts import system_account
from etcd_step_pki.operations.certificates import StepNode, node_certificates
from etcd_step_pki.operations.installed_files import file_installed
from etcd_step_pki.operations.renewal import METRICS_SCRIPT, metrics_script, timers, unit_files
from etcd_step_pki.operations.units import systemd_units


def database_prepared(settings: Settings) -> None:
    """On a cert-manager, before step-ca: MariaDB and Galera installed, the settings every
    node runs with; on the first, MariaDB running (alone, until Galera exists) with step-ca's
    database and account."""
    if settings.galera_role != "node":
        return
    apt.packages(name="MariaDB and Galera", packages=list(galera.PACKAGES))
    file_installed(
        name="MariaDB's settings for the CA", dest=galera.BASE_CONFIG, text=galera.base_config(),
        mode="0644",
    )  # fmt: skip
    if settings.is_primary:
        # After every node was down, the cluster first: step-ca needs its database.
        galera.bootstrapped(name="The CA's Galera cluster runs again", peers=peers_of(settings),
                            cold_only=True)  # fmt: skip
        galera.started_alone(name="MariaDB runs (alone until Galera exists)")
        galera.database_account(name="step-ca's database and account", user=settings.ca_user)


@component("The CA's Galera cluster")
def galera_cluster() -> None:
    """Every Galera host's replication certificate from the CA (renewed like the others and
    read again without a restart), then the nodes in the cluster one at a time, then the
    arbitrator."""
    settings = load_settings()
    role = settings.galera_role
    if role is None or settings.galera is None:
        return
    owner = galera.NODE_ACCOUNT if role == "node" else galera.ARBITRATOR_ACCOUNT
    if role == "arbitrator":
        apt.packages(name="Galera's arbitrator", packages=list(galera.ARBITRATOR_PACKAGES))
        system_account(name="The arbitrator's account", user=owner, home=galera.GALERA_SSL_DIR)
    step_binary(settings)
    node = StepNode(
        bin_dir=settings.bin_dir,
        step_path=settings.step_path,
        ssl_dir=galera.GALERA_SSL_DIR,
        owner=owner,
    )
    items = settings.galera_certificates
    node_certificates(
        name="Replication certificate",
        certificates=items,
        sans=settings.sans,
        authority=arguments.authority(settings),
        node=node,
        issuance=arguments.issuance(settings),
        now=time.time(),
        trust_links=False,
        request=f"{settings.host}+galera",
    )
    enabled = settings.renewal.enabled
    if settings.renewal.metrics_dir is not None and not settings.holds_certificates:
        # The renewal units record their metrics with the helper hosts with certificates have.
        file_installed(
            name="Renewal metrics helper",
            dest=f"{settings.bin_dir}/{METRICS_SCRIPT}",
            text=metrics_script(node, arguments.schedule(settings)),
            mode="0755",
        )
    systemd_units(
        name="Replication certificate renewal",
        units=timers(items),
        files=unit_files(items, node, settings.every_ca_url, arguments.schedule(settings)),
        running=enabled,
        enabled=enabled,
    )
    layout = settings.galera
    peers = peers_of(settings)
    if role == "node":
        written = file_installed(
            name="Galera's settings", dest=galera.GALERA_CONFIG, text=galera.galera_config(peers),
            mode="0644",
        )  # fmt: skip
        started = None
        if settings.host == peers.first:
            started = galera.bootstrapped(name="The CA's Galera cluster exists", peers=peers)
        galera.node_in_cluster(
            name="In the CA's Galera cluster",
            peers=peers,
            restart_after=[written],
            bootstrap=started,
            _serial=True,
        )
        node_watched(settings, len(layout.members))
    else:
        systemd_units(
            name="Galera's arbitrator runs",
            units=[galera.ARBITRATOR_UNIT],
            files={galera.ARBITRATOR_UNIT: galera.arbitrator_unit(peers)},
            running=True,
            enabled=True,
        )


def node_watched(settings: Settings, voters: int) -> None:
    """With metrics on, the node's place in the cluster read on the CA probe's interval
    (operations/galera_metrics.py); with metrics off, its timer stopped."""
    metrics_dir = settings.renewal.metrics_dir
    timer = f"{galera_metrics.METRICS_UNIT}.timer"
    if metrics_dir is None:
        systemd_units(name="Galera metrics off", units=[], always_off=[timer])
        return
    file_installed(
        name="Galera metrics script",
        dest=f"{settings.bin_dir}/{galera_metrics.METRICS_UNIT}",
        text=galera_metrics.metrics_script(voters),
        mode="0755",
    )
    interval = settings.renewal.probe_interval
    units = galera_metrics.metrics_units(
        galera.NODE_ACCOUNT, settings.bin_dir, metrics_dir, interval
    )
    systemd_units(name="Galera metrics", units=[timer], files=units, running=True, enabled=True)


def peers_of(settings: Settings) -> galera.GaleraPeers:
    """This host's place in the CA's Galera cluster (a Galera host's settings)."""
    layout = settings.galera
    assert layout is not None
    return galera.peers_of(
        layout.group,
        settings.host,
        [(n.name, n.address) for n in layout.nodes],
        [m.address for m in layout.members],
    )
