"""Prometheus alert rules on the renewal units' textfile metrics and etcd's own, and putting
them in place on a Prometheus server.

The rules read what `etcd-pki-renewal-metrics` writes on every member and client
(`etcd_pki_*`, labels host, kind, file) and what etcd serves on `etcd_metrics_port`
(`etcd_server_*`, `etcd_disk_*`, `etcd_network_*`, `etcd_mvcc_*`, `grpc_server_*`, `up`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import yaml
from pyinfra import host
from pyinfra.api import OperationError, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.prometheus import PrometheusSetup, loads_rules
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca_probe import probe_rules
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.galera_metrics import galera_rules
from etcd_step_pki.templates.scripts import script

DAY = 86400
GROUP = "etcd-step-pki"


@dataclass(frozen=True)
class Thresholds:
    """When the alerts fire."""

    certificate_expiry_days: int = 7
    ca_expiry_days: int = 90
    renewal_overdue_after: str = "26h"
    metrics_stale_after: str = "50h"
    crl_refresh_failing_after: str = "6h"
    ca_down_after: str = "2m"
    etcd_job: str = "etcd"
    # etcd's own (its monitoring mixin's, etcd-io/etcd contrib/mixin, and its defaults)
    etcd_leader_changes: int = 4  # in 15 minutes
    etcd_grpc_failed_percent: float = 1.0  # of a method's requests, over 5 minutes
    etcd_grpc_failed_critical_percent: float = 5.0
    etcd_grpc_slow_seconds: float = 0.15  # the 99th percentile of unary requests
    etcd_peer_rtt_seconds: float = 0.15  # the 99th percentile of round trips to a peer
    etcd_proposals_failed_per_second: float = 5.0  # over 15 minutes
    etcd_fsync_seconds: float = 0.5  # the 99th percentile of WAL fsyncs
    etcd_fsync_critical_seconds: float = 1.0
    etcd_commit_seconds: float = 0.25  # the 99th percentile of backend commits
    etcd_quota_percent: float = 95.0  # of the backend quota the database fills
    etcd_fragmentation_ratio: float = 0.5  # the share in use below which it is fragmented


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


# gRPC codes that mean the server failed a request (not the client's: NotFound, Canceled, ...).
GRPC_FAILED = (
    "Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded"
)
# A database smaller than this in use is not worth defragmenting (100 MiB).
FRAGMENTED_IN_USE_BYTES = 104857600


def _p99(histogram: str, job: str) -> str:
    return f"histogram_quantile(0.99, rate({histogram}_bucket{{{job}}}[5m]))"


def _etcd_rules(limits: Thresholds, job: str) -> list[dict[str, Any]]:
    """etcd watched as etcd's monitoring mixin watches it: its alerts, expressions, `for`
    durations and severities, with its thresholds as the defaults of `limits`. Alerts about a
    cluster as a whole keep every label but `instance` (the mixin's cluster label is `job`)."""
    on = "etcd on {{ $labels.instance }}"
    grpc_failed = (
        "100 * sum without (grpc_type, grpc_code) (rate(grpc_server_handled_total"
        f'{{{job}, grpc_code=~"{GRPC_FAILED}"}}[5m]))'
        " / sum without (grpc_type, grpc_code) (rate(grpc_server_handled_total"
        f"{{{job}}}[5m]))"
    )
    leader_changes = f"etcd_server_leader_changes_seen_total{{{job}}}"
    db_size = f"etcd_mvcc_db_total_size_in_bytes{{{job}}}"
    db_in_use = f"etcd_mvcc_db_total_size_in_use_in_bytes{{{job}}}"
    quota = f"etcd_server_quota_backend_bytes{{{job}}}"
    rules = [
        _rule(
            "EtcdInsufficientMembers",
            f"sum without (instance) (up{{{job}}} == bool 1)"
            f" < ((count without (instance) (up{{{job}}}) + 1) / 2)",
            "critical",
            "too few members of etcd job {{ $labels.job }} answer for a quorum",
            "3m",
        ),
        _rule(
            "EtcdHighNumberOfLeaderChanges",
            f"increase((max without (instance) ({leader_changes})"
            f" or 0 * absent({leader_changes}))[15m:1m]) >= {limits.etcd_leader_changes}",
            "warning",
            f"etcd job {{{{ $labels.job }}}} changed its leader {limits.etcd_leader_changes}"
            " times or more in 15 minutes: short of CPU, disk or network?",
            "5m",
        ),
    ]
    for severity, percent, duration in (
        ("warning", limits.etcd_grpc_failed_percent, "10m"),
        ("critical", limits.etcd_grpc_failed_critical_percent, "5m"),
    ):
        rules.append(
            _rule(
                "EtcdHighNumberOfFailedGRPCRequests",
                f"{grpc_failed} > {percent:g}",
                severity,
                f"more than {percent:g}% of the {{{{ $labels.grpc_method }}}} requests to {on}"
                " fail",
                duration,
            )
        )
    rules += [
        _rule(
            "EtcdGRPCRequestsSlow",
            "histogram_quantile(0.99, sum without (grpc_type) (rate("
            f'grpc_server_handling_seconds_bucket{{{job}, grpc_method!="Defragment",'
            f' grpc_type="unary"}}[5m]))) > {limits.etcd_grpc_slow_seconds:g}',
            "critical",
            f"the 99th percentile of the {{{{ $labels.grpc_method }}}} requests to {on} takes"
            f" more than {limits.etcd_grpc_slow_seconds:g}s",
            "10m",
        ),
        _rule(
            "EtcdMemberCommunicationSlow",
            f"{_p99('etcd_network_peer_round_trip_time_seconds', job)}"
            f" > {limits.etcd_peer_rtt_seconds:g}",
            "warning",
            f"{on} takes more than {limits.etcd_peer_rtt_seconds:g}s to reach member"
            " {{ $labels.To }} (99th percentile of round trips)",
            "10m",
        ),
        _rule(
            "EtcdHighNumberOfFailedProposals",
            f"rate(etcd_server_proposals_failed_total{{{job}}}[15m])"
            f" > {limits.etcd_proposals_failed_per_second:g}",
            "warning",
            f"{on} fails more than {limits.etcd_proposals_failed_per_second:g} proposals a second",
            "15m",
        ),
    ]
    for severity, seconds in (
        ("warning", limits.etcd_fsync_seconds),
        ("critical", limits.etcd_fsync_critical_seconds),
    ):
        rules.append(
            _rule(
                "EtcdHighFsyncDurations",
                f"{_p99('etcd_disk_wal_fsync_duration_seconds', job)} > {seconds:g}",
                severity,
                f"the 99th percentile of WAL fsyncs of {on} takes more than {seconds:g}s:"
                " a slow disk",
                "10m",
            )
        )
    rules += [
        _rule(
            "EtcdHighCommitDurations",
            f"{_p99('etcd_disk_backend_commit_duration_seconds', job)}"
            f" > {limits.etcd_commit_seconds:g}",
            "warning",
            f"the 99th percentile of backend commits of {on} takes more than"
            f" {limits.etcd_commit_seconds:g}s: a slow disk",
            "10m",
        ),
        _rule(
            "EtcdDatabaseQuotaLowSpace",
            f"(last_over_time({db_size}[5m]) / last_over_time({quota}[5m])) * 100"
            f" > {limits.etcd_quota_percent:g}",
            "critical",
            f"the database of {on} fills more than {limits.etcd_quota_percent:g}% of its quota,"
            " where etcd refuses writes: compact and defragment (deploys/etcd_maintenance.py)",
            "10m",
        ),
        _rule(
            "EtcdExcessiveDatabaseGrowth",
            f"predict_linear({db_size}[4h], 4 * 3600) > {quota}",
            "warning",
            f"the database of {on} grows fast enough to reach its quota within 4 hours",
            "10m",
        ),
        _rule(
            "EtcdDatabaseHighFragmentationRatio",
            f"(last_over_time({db_in_use}[5m]) / last_over_time({db_size}[5m]))"
            f" < {limits.etcd_fragmentation_ratio:g}"
            f" and {db_in_use} > {FRAGMENTED_IN_USE_BYTES}",
            "warning",
            f"less than {limits.etcd_fragmentation_ratio:.0%} of the database of {on} is in use:"
            " defragment it (deploys/etcd_maintenance.py)",
            "10m",
        ),
    ]
    return rules


def _crl_rules(limits: Thresholds) -> list[dict[str, Any]]:
    """On the metrics the CRL timer writes after each refresh (etcd-pki-crl-metrics)."""
    failing = int(parse_duration(limits.crl_refresh_failing_after))
    stale = int(parse_duration(limits.metrics_stale_after))
    where = "the CRL of {{ $labels.host }}"
    return [
        _rule(
            "EtcdPkiCrlRefreshFailing",
            "etcd_pki_crl_last_refresh_result == 0"
            f" and time() - etcd_pki_crl_last_success_timestamp_seconds > {failing}",
            "warning",
            f"{where} has not been refreshed for more than {limits.crl_refresh_failing_after}:"
            " its refreshes fail (the etcd-pki-crl unit's journal says why)",
        ),
        _rule(
            "EtcdPkiCrlExpired",
            "time() > etcd_pki_crl_next_update_timestamp_seconds",
            "critical",
            f"{where} is past its next update: revocations since are not seen",
        ),
        _rule(
            "EtcdPkiCrlRefreshesStopped",
            f"time() - etcd_pki_crl_metrics_timestamp_seconds > {stale}",
            "warning",
            f"no refresh of {where} has run for {limits.metrics_stale_after}: is its timer on?",
        ),
    ]


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
                    *_crl_rules(limits),
                    *probe_rules(limits.ca_down_after, _rule),
                    *galera_rules(limits.ca_down_after, _rule),
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
                    *_etcd_rules(limits, job),
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
    found = memo.get_fact(host, PrometheusSetup, config=config, rules_file=path, service=service)
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
    yield script("prometheus-rules-install.sh.j2", text=text, path=path, service=service)
