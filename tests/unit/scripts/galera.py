"""Active-active's scripts: the Galera status fact, step-ca's account, a node's start, and
the helper that reaches the first CA that answers."""

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
        _text(
            script(
                "galera-node-start.sh.j2",
                action=action,
                wait=galera.SYNCED_WAIT,
                claim=action == "bootstrap",
                grastate=galera.GRASTATE,
            )
        )
        for action in ("bootstrap", "restart")
    )


def position() -> str:
    return _text(script("galera-position.sh.j2"))


def records() -> str:
    from etcd_step_pki.facts.ca_records import GaleraRecords

    return _text(GaleraRecords().command(galera.DATABASE))


def galera_metrics() -> str:
    from etcd_step_pki.operations.galera_metrics import metrics_script

    return metrics_script(3)


def records_move() -> str:
    counts = {"x509_certs": 12, "used_ott": 11}
    return _text(script("galera-records-move.sh.j2", database=galera.DATABASE, counts=counts))


def first_ca() -> str:
    from etcd_step_pki.operations.every_ca import first_ca_script

    return first_ca_script()


SAMPLES: dict[str, Callable[[], str]] = {
    "etcd-pki-first-ca.sh.j2": first_ca,
    "galera-records-move.sh.j2": records_move,
    "etcd-pki-galera-metrics.sh.j2": galera_metrics,
    "facts/galera-records.sh.j2": records,
    "facts/galera-status.sh.j2": status,
    "galera-account.sh.j2": account,
    "galera-node-start.sh.j2": node_start,
    "galera-position.sh.j2": position,
}
