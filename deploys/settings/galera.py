"""The CA's database cluster with `ca_ha=active-active`: which hosts vote, checked against
the whole inventory before any host is touched.

Galera accepts writes only on the side that holds a majority of the votes. Every
cert-manager is a node with a vote, the arbitrator (`garbd`, on a host that is no
cert-manager) one more; a layout that cannot lose one host and keep a majority is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from etcd_step_pki.deploys.settings.host import Galera, GaleraNode, Settings
from etcd_step_pki.deploys.settings.reading import invalid


def galera_layout(views: Mapping[str, Settings]) -> Galera | None:
    """The Galera cluster of the inventory (one view of every host), or None with the
    standby layout. SettingsError naming the setting and the host when it cannot hold."""
    hosts = list(views.values())
    first = hosts[0]
    for item in hosts:
        if (item.ha, item.galera_arbitrator) != (first.ha, first.galera_arbitrator):
            setting = "ca_ha" if item.ha != first.ha else "ca_galera_arbitrator"
            raise invalid(item.host, setting, f"differs from {first.host}'s: one CA, one layout")
    if not first.active_active:
        if first.galera_arbitrator is not None:
            raise invalid(first.host, "ca_galera_arbitrator", "only with ca_ha=active-active")
        return None
    managers = [item for item in hosts if item.is_cert_manager]
    if first.run.ca_active is not None:
        raise invalid(
            first.host,
            "ca_active",
            "with ca_ha=active-active every cert-manager runs step-ca: nothing fails over",
        )
    if len(managers) < 2:
        raise invalid(
            first.host, "ca_ha", "active-active needs two cert-managers at least (one is listed)"
        )
    arbitrator = _arbitrator(views, first.galera_arbitrator)
    if len(managers) + (arbitrator is not None) < 3:
        raise invalid(
            first.host,
            "ca_galera_arbitrator",
            f"{len(managers)} cert-managers alone lose their majority when one of them is "
            "lost: name a third host of the inventory to run the arbitrator",
        )
    return Galera(
        nodes=tuple(_node(item) for item in managers),
        arbitrator=arbitrator,
        group=f"etcd-pki-{first.ca_cluster}",
    )


def _arbitrator(views: Mapping[str, Settings], name: str | None) -> GaleraNode | None:
    if name is None:
        return None
    item = views.get(name)
    if item is None:
        raise invalid(next(iter(views)), "ca_galera_arbitrator", f"{name!r} is no inventory host")
    if item.is_cert_manager:
        raise invalid(
            name,
            "ca_galera_arbitrator",
            f"{name} is a cert-manager: the arbitrator is another host",
        )
    return _node(item)


def _node(item: Settings) -> GaleraNode:
    if not item.addresses:
        raise invalid(
            item.host,
            "node_addresses",
            "a host of the CA's Galera cluster needs the IP address it replicates on",
        )
    return GaleraNode(item.host, item.addresses[0])


def with_galera(views: dict[str, dict[str, Settings]]) -> dict[str, dict[str, Settings]]:
    """Every view (cluster: host: settings) with the inventory's Galera cluster."""
    galera = galera_layout(next(iter(views.values())))
    if galera is None:
        return views
    return {
        cluster: {name: dataclasses.replace(item, galera=galera) for name, item in hosts.items()}
        for cluster, hosts in views.items()
    }
