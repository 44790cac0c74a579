"""A run's settings, validated once: what deploys call to read them.

The first call of a run validates every host of the inventory (validation.py) and keeps the
result with the run's State; `each_cluster` gives each cluster its turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import urlsplit

from pyinfra import host, state
from pyinfra.api.inventory import Inventory
from pyinfra.context import ctx_state

from etcd_step_pki.deploys.settings.host import Settings
from etcd_step_pki.deploys.settings.reading import SettingsError, invalid
from etcd_step_pki.deploys.settings.validation import (
    RunSettings,
    named_cluster,
    settings_for,
    validate_run,
)
from etcd_step_pki.deploys.settings.values import parse_time
from etcd_step_pki.operations.profiles import GALERA_SCOPE

# The run whose settings were validated (its State, kept so that it is not mistaken for a
# later one) and every host's settings: validated once a run.
_validated: dict[str, tuple[object, RunSettings]] = {}
# The cluster of the turn of `each_cluster` being planned; None outside one.
_turn: ContextVar[str | None] = ContextVar("etcd_cluster_turn", default=None)


def _current_run() -> RunSettings | None:
    run = _validated.get("run")
    return run[1] if run is not None and run[0] is ctx_state.get() else None


def _run_settings() -> RunSettings:
    settings = _current_run()
    if settings is None:
        settings = validate_run(state.inventory)
        _validated["run"] = (ctx_state.get(), settings)
    return settings


def _chosen(run: RunSettings) -> str | None:
    """The cluster of this part of the run: the turn of `each_cluster`, else the one named
    by `etcd_cluster`, else None (each host's first)."""
    return _turn.get() or named_cluster(run)


def load_settings() -> Settings:
    """The current host's settings, after checking every host of the inventory once a run:
    its view of the cluster of this part of the run (`each_cluster`, `etcd_cluster`), else of
    its first cluster."""
    run = _run_settings()
    cluster = _chosen(run)
    return run.views[cluster][host.name] if cluster else run.host_settings(host.name)


def all_settings() -> list[Settings]:
    """Every host's settings (validated once a run), in inventory order, as load_settings
    gives them."""
    run = _run_settings()
    cluster = _chosen(run)
    if cluster:
        return list(run.views[cluster].values())
    return [run.host_settings(name) for name in run.home]


def each_cluster() -> Iterator[str]:
    """Every cluster of the inventory in turn, the same on every host (pyinfra's loop keeps
    each turn's operations apart and in line across hosts); in each turn, load_settings and
    all_settings give that cluster's views. With `etcd_cluster` set, that cluster alone."""
    run = _run_settings()
    named = named_cluster(run)
    for cluster in host.loop([named] if named else list(run.clusters)):
        turn = _turn.set(cluster)
        try:
            yield cluster
        finally:
            _turn.reset(turn)


def cluster_views() -> list[Settings]:
    """The current host's view of each of its clusters (none for a cert-manager only)."""
    run = _run_settings()
    mine = run.host_settings(host.name)
    return [run.views[cluster][host.name] for cluster, _ in mine.memberships]


def cluster_names() -> dict[str, tuple[str, ...]]:
    """Each cluster's names and addresses, from the inventory: every subject and SAN that the
    certificates of its members and clients carry, the only ones its provisioners issue for
    (and, with `ca_ha=active-active`, the Galera hosts' under GALERA_SCOPE)."""
    run = _run_settings()
    names = {
        cluster: tuple(
            dict.fromkeys(
                name
                for s in views.values()
                if s.needs_certificates
                for name in (s.node_name, *s.sans)
            )
        )
        for cluster, views in run.views.items()
    }
    galera = [s for s in run.views[run.clusters[0]].values() if s.galera_role]
    if galera:
        # The Galera hosts' names, for their replication certificates' provisioner.
        names[GALERA_SCOPE] = tuple(dict.fromkeys(n for s in galera for n in (s.host, *s.sans)))
    return names


def one_cluster(deploy: str) -> str:
    """The cluster a deploy that acts on one cluster acts on: the inventory's only one, or
    the one named by `etcd_cluster`; refused when several are and none is named."""
    run = _run_settings()
    cluster = _chosen(run)
    if cluster:
        return cluster
    if len(run.clusters) > 1:
        raise SettingsError(
            f"etcd_cluster: {deploy} acts on one cluster and the inventory has several "
            f"({', '.join(run.clusters)}): name it with --data etcd_cluster=<name>"
        )
    return run.clusters[0]


def validate_inventory_host(inventory: Inventory, name: str) -> Settings:
    """One host's settings: from this run's validation if done, else validated now."""
    settings = _current_run()
    if settings is not None:
        return settings.host_settings(name)
    return settings_for(inventory.get_host(name), inventory)


def ca_dns_names(settings: Settings) -> list[str]:
    """Names and addresses the CA's TLS certificate covers, so any cert-manager can take over."""
    inventory = state.inventory
    names = [urlsplit(settings.ca_url).hostname or ""]
    for name in (settings.primary, *settings.backups):
        names.append(name)
        names.extend(validate_inventory_host(inventory, name).addresses)
    names.extend(settings.ca_dns_names)
    names.extend(["localhost", "127.0.0.1"])
    return list(dict.fromkeys(n for n in names if n))


def time_setting(key: str) -> float:
    """A day-2 deploy's point in time (`renew_before`, `rotate_before`): an ISO 8601 time
    with a time zone, validated with the other settings, as seconds since the epoch."""
    text = getattr(load_settings().run, key)
    if text is None:
        raise invalid(host.name, key, "not set: give an ISO 8601 time such as 2026-11-28T06:00:00Z")
    return parse_time(text)
