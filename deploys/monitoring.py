"""Prometheus alert rules for the PKI and etcd, on the hosts of the `prometheus` group.

    pyinfra inventories/<environment>.py deploys/monitoring.py

The rules (renewal due, overdue or failed, a certificate expiring, renewal checks stopped,
step-ca down, the root or intermediate expiring, an etcd member down, unhealthy or without a
leader) read the renewal units' textfile metrics (`metrics_textfile_dir`, scraped through
node-exporter's textfile collector) and etcd's metrics (`etcd_metrics_port`). The file is
checked with promtool before it replaces the old one, and Prometheus is reloaded. Refused,
before anything changes, where prometheus.yml does not load `prometheus_rules_file`.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import monitoring as monitoring_component
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("monitoring.py", data_defaults=DEFAULTS)
def monitoring() -> None:
    """Prometheus alert rules for the PKI and etcd, on the hosts of the `prometheus` group."""
    monitoring_component.monitoring()


run_when_executed(globals(), monitoring)
