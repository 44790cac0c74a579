"""The CA's Galera cluster watched (ca_ha=active-active, with metrics on): each node's place
in the cluster as textfile metrics, read on a timer, and the alerts on them."""

from __future__ import annotations

from typing import Any

from etcd_step_pki.operations.ca_probe import PROBES_STALE_AFTER, timed_metrics_units
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.templates import render

METRICS_UNIT = "etcd-pki-galera-metrics"
METRICS_FILE = "etcd_pki_galera.prom"
_NAMES = "up|primary|synced|ready|cluster_size|voters|flow_control_paused|timestamp_seconds"
# Flow control pausing replication this much of the time, for this long: a node that lags.
FLOW_CONTROL_SHARE = 0.1
FLOW_CONTROL_FOR = "10m"


def metrics_pattern() -> str:
    """Every line the script writes, and nothing else."""
    return (
        f"^(# (HELP|TYPE) etcd_pki_galera_({_NAMES}) .*"
        f'|etcd_pki_galera_({_NAMES})\\{{host="[A-Za-z0-9._-]*"\\}} [0-9]+(\\.[0-9]+)?)$'
    )


def metrics_script(voters: int) -> str:
    """The script, installed as <bin_dir>/etcd-pki-galera-metrics."""
    return render(f"{METRICS_UNIT}.sh.j2", voters=voters, pattern=metrics_pattern())


def metrics_units(user: str, bin_dir: str, metrics_dir: str, interval: str) -> dict[str, str]:
    """Its timer and service, `{unit file name: text}`: it runs as `user` (MariaDB's), root
    takes its file, checked, into `metrics_dir`."""
    return timed_metrics_units(METRICS_UNIT, METRICS_FILE, "galera.prom", user, bin_dir,
                               metrics_dir, interval)  # fmt: skip


def galera_rules(down_after: str, rule: Any) -> list[dict[str, Any]]:
    """The alerts on the nodes' metrics (`rule` makes one, as operations/monitoring.py
    does): a node out of the primary component, a voter missing, replication held back by
    flow control, metrics that stopped."""
    stale = int(parse_duration(PROBES_STALE_AFTER))
    return [
        rule(
            "EtcdPkiGaleraNotPrimary",
            "etcd_pki_galera_primary == 0",
            "critical",
            "the CA's database node on {{ $labels.host }} is not in the primary component:"
            " its step-ca can record nothing (cut off from the majority, or MariaDB down)",
            down_after,
        ),
        rule(
            "EtcdPkiGaleraVoterMissing",
            "etcd_pki_galera_cluster_size < etcd_pki_galera_voters"
            " and etcd_pki_galera_primary == 1",
            "warning",
            "{{ $labels.host }} sees fewer voters than the CA's Galera cluster has: one more"
            " loss and no CA can record anything",
            down_after,
        ),
        rule(
            "EtcdPkiGaleraFlowControl",
            f"etcd_pki_galera_flow_control_paused > {FLOW_CONTROL_SHARE}",
            "warning",
            "replication of the CA's records is paused by flow control on {{ $labels.host }}"
            " (a node that lags behind)",
            FLOW_CONTROL_FOR,
        ),
        rule(
            "EtcdPkiGaleraMetricsStopped",
            f"time() - etcd_pki_galera_timestamp_seconds > {stale}",
            "warning",
            f"the Galera node of {{{{ $labels.host }}}} has not been read for"
            f" {PROBES_STALE_AFTER}: is {METRICS_UNIT}.timer on?",
        ),
    ]
