"""Prometheus alert rules on the renewal units' textfile metrics and etcd's own, and putting
them in place on a Prometheus server.

The rules read what `etcd-pki-renewal-metrics` writes on every member and client
(`etcd_pki_*`, labels host, kind, file) and what etcd serves on `etcd_metrics_port`
(`etcd_server_has_leader`, `etcd_server_health_failures`, `up`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import OperationError, operation

from facts.prometheus import PrometheusSetup, loads_rules
from facts.shell import script
from operations import Commands
from operations.durations import parse_duration

DAY = 86400
GROUP = "etcd-step-pki"


@dataclass(frozen=True)
class Thresholds:
    """When the alerts fire."""

    certificate_expiry_days: int = 7
    ca_expiry_days: int = 90
    renewal_overdue_after: str = "26h"
    metrics_stale_after: str = "50h"
    etcd_job: str = "etcd"


def _rule(
    name: str, expr: str, severity: str, summary: str, duration: str = "0m"
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity},
        "annotations": {"summary": summary},
    }


def alert_rules(limits: Thresholds) -> dict[str, Any]:
    """The rule group, as Prometheus's rules file holds it."""
    overdue = int(parse_duration(limits.renewal_overdue_after))
    stale = int(parse_duration(limits.metrics_stale_after))
    cert_days, ca_days = limits.certificate_expiry_days, limits.ca_expiry_days
    job = f'job="{limits.etcd_job}"'
    where = "{{ $labels.file }} on {{ $labels.host }}"
    return {
        "groups": [
            {
                "name": GROUP,
                "rules": [
                    _rule(
                        "EtcdPkiRenewalDue",
                        "time() >= etcd_pki_renewal_due_timestamp_seconds",
                        "info",
                        f"{where} is due for renewal; its timer renews it on the next run",
                    ),
                    _rule(
                        "EtcdPkiRenewalOverdue",
                        f"time() - etcd_pki_renewal_due_timestamp_seconds > {overdue}",
                        "warning",
                        f"{where} has been due for renewal for more than "
                        f"{limits.renewal_overdue_after} and is not renewed",
                    ),
                    _rule(
                        "EtcdPkiRenewalFailed",
                        "etcd_pki_renewal_last_result == 0",
                        "warning",
                        f"the last renewal of {where} failed (its step-renew unit's journal says why)",
                    ),
                    _rule(
                        "EtcdPkiCertificateExpiring",
                        f"etcd_pki_certificate_not_after_timestamp_seconds - time() < {cert_days * DAY}",
                        "critical",
                        f"{where} expires within {cert_days} days",
                    ),
                    _rule(
                        "EtcdPkiRenewalChecksStopped",
                        f"time() - etcd_pki_metrics_timestamp_seconds > {stale}",
                        "warning",
                        f"no renewal check of {where} has run for {limits.metrics_stale_after}:"
                        " is its timer on?",
                    ),
                    _rule(
                        "EtcdPkiCaDown",
                        "max by (host) (etcd_pki_ca_up) == 0",
                        "critical",
                        "step-ca did not answer the last renewal check of {{ $labels.host }}",
                    ),
                    _rule(
                        "EtcdPkiCaCertificateExpiring",
                        "min by (host, role) (etcd_pki_ca_certificate_not_after_timestamp_seconds)"
                        f" - time() < {ca_days * DAY}",
                        "critical",
                        "the {{ $labels.role }} CA certificate {{ $labels.host }} trusts "
                        f"expires within {ca_days} days",
                    ),
                    _rule(
                        "EtcdMemberDown",
                        f"up{{{job}}} == 0",
                        "critical",
                        "etcd on {{ $labels.instance }} does not answer",
                        "3m",
                    ),
                    _rule(
                        "EtcdNoLeader",
                        f"etcd_server_has_leader{{{job}}} == 0",
                        "critical",
                        "etcd on {{ $labels.instance }} has no leader",
                        "1m",
                    ),
                    _rule(
                        "EtcdMemberUnhealthy",
                        f"increase(etcd_server_health_failures{{{job}}}[5m]) > 0",
                        "warning",
                        "etcd on {{ $labels.instance }} failed its health checks",
                    ),
                ],
            }
        ]
    }


def rules_text(limits: Thresholds) -> str:
    return "# Managed by etcd-step-pki (deploys/monitoring.py).\n" + yaml.safe_dump(
        alert_rules(limits), sort_keys=False, width=100
    )


@operation()
def alert_rules_installed(text: str, *, path: str, config: str, service: str) -> Commands:
    """
    Put the rules file in place when it differs, checked by promtool first, and reload
    Prometheus (a running one; a stopped one reads them when it starts).

    + text: the rules file
    + path: where Prometheus reads it
    + config: Prometheus's configuration, whose `rule_files` must load `path`
    + service: Prometheus's systemd unit

    Refused before anything changes when promtool is missing or the configuration does not
    load the file: rules nobody evaluates alert nobody.
    """
    found = host.get_fact(PrometheusSetup, config=config, rules_file=path, service=service)
    if found["config"] is None:
        raise OperationError(f"no Prometheus configuration at {config}: install Prometheus first")
    if not loads_rules(found["config"], config, path):
        raise OperationError(
            f"{config} does not load {path}: add it under `rule_files:` (nothing was changed)"
        )
    if not found["promtool"]:
        raise OperationError("promtool is not installed (Debian: package prometheus)")
    if found["rules_sha256"] == hashlib.sha256(text.encode()).hexdigest():
        host.noop(f"{path} holds these rules")
        return
    yield script(
        "umask 022; printf %s {text} > {new};"
        " promtool check rules {new} >&2 || {{ rm -f {new}; exit 1; }};"
        " chmod 0644 {new} && mv -f {new} {path};"
        " if systemctl is-active -q {service}; then systemctl reload {service}; fi",
        text=text,
        new=f"{path}.new",
        path=path,
        service=service,
    )
