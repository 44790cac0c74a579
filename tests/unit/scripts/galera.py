"""The CA's Galera database's scripts: its status fact, step-ca's account, a node's start."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.facts.galera import GaleraStatus
from etcd_step_pki.operations import galera
from etcd_step_pki.templates.scripts import script


def _text(command: object) -> str:
    return str(command.bits[2].obj)  # type: ignore[attr-defined]


def status() -> str:
    return _text(GaleraStatus().command(galera.GRASTATE, galera.account("step")))


def account() -> str:
    return _text(
        script(
            "galera-account.sh.j2",
            database=galera.DATABASE,
            account=galera.account("step"),
            privileges=galera.PRIVILEGES,
        )
    )


def node_start() -> str:
    return "\n".join(
        _text(script("galera-node-start.sh.j2", action=action, wait=galera.SYNCED_WAIT))
        for action in ("bootstrap", "restart")
    )


SAMPLES: dict[str, Callable[[], str]] = {
    "facts/galera-status.sh.j2": status,
    "galera-account.sh.j2": account,
    "galera-node-start.sh.j2": node_start,
}
