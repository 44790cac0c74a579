"""Alert rules on the hosts of the `prometheus` group."""

from __future__ import annotations

from pyinfra.api.operation import OperationMeta

from etcd_step_pki.deploys.components import component
from etcd_step_pki.deploys.settings import load_settings
from etcd_step_pki.operations.monitoring import alert_rules_installed, rules_text


@component("Alert rules")
def monitoring() -> OperationMeta | None:
    """The rules file checked by promtool, in place, Prometheus reloaded."""
    settings = load_settings()
    if "prometheus" not in settings.groups:
        return None
    alerting = settings.alerting
    return alert_rules_installed(
        name="Alert rules for certificates, the CA and etcd",
        text=rules_text(alerting.thresholds),
        path=alerting.rules_file,
        config=alerting.config,
        service=alerting.service,
    )
