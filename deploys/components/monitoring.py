"""Alert rules on the hosts of the `prometheus` group."""

from __future__ import annotations

from pyinfra.api.operation import OperationMeta

from deploys.components import component
from deploys.settings import Alerting, load_settings
from operations.monitoring import Thresholds, alert_rules_installed, rules_text


def thresholds(alerting: Alerting) -> Thresholds:
    return Thresholds(
        certificate_expiry_days=alerting.certificate_expiry_days,
        ca_expiry_days=alerting.ca_expiry_days,
        renewal_overdue_after=alerting.renewal_overdue_after,
        metrics_stale_after=alerting.metrics_stale_after,
        etcd_job=alerting.etcd_job,
    )


@component("Alert rules")
def monitoring() -> OperationMeta | None:
    """The rules file checked by promtool, in place, Prometheus reloaded."""
    settings = load_settings()
    if "prometheus" not in settings.groups:
        return None
    alerting = settings.alerting
    return alert_rules_installed(
        name="Alert rules for certificates, the CA and etcd",
        text=rules_text(thresholds(alerting)),
        path=alerting.rules_file,
        config=alerting.config,
        service=alerting.service,
    )
