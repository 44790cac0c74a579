"""The monitoring side's scripts: the alert rules put in place on a Prometheus host."""

from __future__ import annotations

from collections.abc import Callable

from etcd_step_pki.facts.prometheus import PrometheusSetup
from etcd_step_pki.operations import monitoring
from tests.unit.fakes import FakeHost, run_op
from tests.unit.scripts.pki import _text

CONFIG = "/etc/prometheus/prometheus.yml"
RULES = "/etc/prometheus/etcd-step-pki.rules.yml"


def rules_install() -> str:
    setup = {
        "config": f"rule_files:\n  - {RULES}\n",
        "promtool": True,
        "rules_sha256": None,
    }
    (command,) = run_op(
        monitoring.alert_rules_installed,
        FakeHost({PrometheusSetup: setup}),
        "groups: []\n",
        path=RULES,
        config=CONFIG,
        service="prometheus.service",
    )
    return _text(command)


SAMPLES: dict[str, Callable[[], str]] = {
    "prometheus-rules-install.sh.j2": rules_install,
}
