"""The renewal units' scripts: the textfile-metrics helpers of certificates and of the CRL,
and the CA probe."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.operations.ca_probe import probe_script
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


def ca_probe() -> str:
    return probe_script(
        ["https://ca.example:9000", "https://10.0.0.2:9000"], "/etc/etcd/ssl/root_ca.crt"
    )


SAMPLES: dict[str, Callable[[], str]] = {
    "etcd-pki-renewal-metrics.sh.j2": metrics_helper,
    "etcd-pki-crl-metrics.sh.j2": crl_metrics_helper,
    "etcd-pki-ca-probe.sh.j2": ca_probe,
}
