"""The renewal units' scripts: the textfile-metrics helpers of certificates and of the CRL."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.operations.certificates import StepNode
from etcd_step_pki.operations.renewal import RenewalSchedule, metrics_script
from etcd_step_pki.operations.revocation import crl_metrics_script


def metrics_helper() -> str:
    return metrics_script(
        StepNode(bin_dir="/usr/local/bin"),
        RenewalSchedule(metrics_dir="/var/lib/prometheus/node-exporter", expires_in="8h"),
    )


def crl_metrics_helper() -> str:
    return crl_metrics_script("/var/lib/prometheus/node-exporter", "/etc/etcd/ssl/ca.crl")


SAMPLES: dict[str, Callable[[], str]] = {
    "etcd-pki-renewal-metrics.sh.j2": metrics_helper,
    "etcd-pki-crl-metrics.sh.j2": crl_metrics_helper,
}
