"""Running the alert rules under `promtool test rules` (Debian's prometheus, installed by
tests/hosts/prerequisites.sh): the rules fire, and only then, on the series given."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from etcd_step_pki.operations.monitoring import Thresholds, rules_text

# One certificate as the metrics helper labels it.
CERT = '{host="etcd-k8s-1",kind="peer",file="/etc/etcd/ssl/etcd-k8s-1-peer.crt"}'


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run tests/hosts/prerequisites.sh (Debian's prometheus)")
    return found


def check_rules(
    tmp_path: Path, tests: list[dict[str, Any]], limits: Thresholds | None = None
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_text(limits or Thresholds()))
    spec = tmp_path / "test.yml"
    # Rules are evaluated at each sample of the series: on the hour in hourly tests.
    every = tests[0]["interval"]
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules.name], "evaluation_interval": every, "tests": tests})
    )
    out = subprocess.run(
        [promtool(), "test", "rules", str(spec)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def firing(
    name: str,
    at: str,
    labels: dict[str, str] | None,
    severities: tuple[str, ...] | None = None,
    limits: Thresholds | None = None,
) -> dict[str, Any]:
    """An alert_rule_test: `name` fires with `labels` at `at`, or (None) does not fire. An
    alert with a rule per severity fires at those `severities` (default: every one); its
    summary is the one of the rules made with `limits`."""
    if labels is None:
        return {"alertname": name, "eval_time": at, "exp_alerts": []}
    rules = [r for r in alert_rules_loaded(limits) if r["alert"] == name]
    if severities is not None:
        rules = [r for r in rules if r["labels"]["severity"] in severities]
    assert rules, (name, severities)
    alerts = []
    for rule in rules:
        summary = rule["annotations"]["summary"]
        for key, value in labels.items():
            summary = summary.replace(f"{{{{ $labels.{key} }}}}", value)
        assert "{{" not in summary, f"{name}'s summary names a label the alert does not have"
        alerts.append(
            {
                "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
                "exp_annotations": {"summary": summary},
            }
        )
    return {"alertname": name, "eval_time": at, "exp_alerts": alerts}


def alert_rules_loaded(limits: Thresholds | None = None) -> list[dict[str, Any]]:
    text = rules_text(limits or Thresholds())
    rules: list[dict[str, Any]] = yaml.safe_load(text)["groups"][0]["rules"]
    return rules


def sample(name: str, values: str, labels: str = CERT) -> dict[str, str]:
    return {"series": f"{name}{labels}", "values": values}
