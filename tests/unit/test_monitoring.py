"""The alert rules: valid for promtool, and firing (and only then) on series shaped like what
the renewal units and etcd export. promtool is Debian's (tests/hosts/prerequisites.sh)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from etcd_step_pki.facts.prometheus import loads_rules
from etcd_step_pki.operations.monitoring import Thresholds, rules_text
from tests.unit.promql import alert_rules_loaded, check_rules, firing, promtool, sample

HOUR = 3600
DAY = 24 * HOUR
# One certificate as the metrics helper labels it, on a 30-day lifetime: it starts at 0,
# expires at 720 h, and is due at 66% (475.2 h).
ALERT_LABELS = {"host": "etcd-k8s-1", "kind": "peer", "file": "/etc/etcd/ssl/etcd-k8s-1-peer.crt"}


def _certificate(due: int = int(475.2 * HOUR), not_after: int = 720 * HOUR) -> list[dict]:
    """The helper's series of a healthy certificate, sampled hourly for 800 h."""
    return [
        sample("etcd_pki_renewal_due_timestamp_seconds", f"{due}+0x800"),
        sample("etcd_pki_certificate_not_after_timestamp_seconds", f"{not_after}+0x800"),
        sample("etcd_pki_renewal_last_result", "1+0x800"),
        sample("etcd_pki_ca_up", "1+0x800"),
        sample("etcd_pki_metrics_timestamp_seconds", f"0+{HOUR}x800"),
    ]


def test_the_rules_pass_promtoolcheck_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_text(Thresholds(renewal_overdue_after="90m", etcd_job="etcd-k8s")))
    out = subprocess.run(
        [promtool(), "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert 'job="etcd-k8s"' in rules.read_text() and "> 5400" in rules.read_text()


def test_renewal_due_then_overdue_then_expiring_as_time_passes(tmp_path: Path) -> None:
    check_rules(
        tmp_path,
        [
            {
                "interval": "1h",
                "input_series": _certificate(),
                "alert_rule_test": [
                    firing("EtcdPkiRenewalDue", "400h", None),
                    firing("EtcdPkiRenewalDue", "476h", ALERT_LABELS),
                    # Due, but its daily timer has not had its chance yet: not overdue.
                    firing("EtcdPkiRenewalOverdue", "500h", None),
                    firing("EtcdPkiRenewalOverdue", "502h", ALERT_LABELS),
                    firing("EtcdPkiCertificateExpiring", "551h", None),
                    firing("EtcdPkiCertificateExpiring", "553h", ALERT_LABELS),
                    firing("EtcdPkiRenewalChecksStopped", "700h", None),
                    firing("EtcdPkiRenewalFailed", "700h", None),
                    firing("EtcdPkiCaDown", "700h", None),
                ],
            }
        ],
    )


def test_a_renewed_certificate_clears_the_due_alert(tmp_path: Path) -> None:
    # Renewed at 480 h: a new lifetime from then, so due again only at 955.2 h.
    renewed = [
        sample(
            "etcd_pki_renewal_due_timestamp_seconds", f"{int(475.2 * HOUR)}+0x480 3439440+0x320"
        ),
        sample("etcd_pki_renewal_last_result", "1+0x800"),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1h",
                "input_series": renewed,
                "alert_rule_test": [
                    firing("EtcdPkiRenewalDue", "479h", ALERT_LABELS),
                    firing("EtcdPkiRenewalDue", "482h", None),
                    firing("EtcdPkiRenewalOverdue", "700h", None),
                ],
            }
        ],
    )


def test_failed_renewal_ca_down_and_stale_checks(tmp_path: Path) -> None:
    series = [
        sample("etcd_pki_renewal_last_result", "1 1 0+0x100"),
        sample("etcd_pki_ca_up", "1 1 0+0x100"),
        # The last check wrote its metrics at 2 h, and none ran since.
        sample("etcd_pki_metrics_timestamp_seconds", f"0 {HOUR} {2 * HOUR}+0x100"),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1h",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdPkiRenewalFailed", "1h", None),
                    firing("EtcdPkiRenewalFailed", "2h", ALERT_LABELS),
                    firing("EtcdPkiCaDown", "1h", None),
                    firing("EtcdPkiCaDown", "2h", {"host": "etcd-k8s-1"}),
                    firing("EtcdPkiRenewalChecksStopped", "51h", None),
                    firing("EtcdPkiRenewalChecksStopped", "53h", ALERT_LABELS),
                ],
            }
        ],
    )


def test_root_and_intermediate_expiring(tmp_path: Path) -> None:
    root = '{host="client-1",kind="client",file="/etc/etcd/ssl/client-1-client.crt",role="root"}'
    inter = (
        '{host="client-1",kind="client",file="/etc/etcd/ssl/client-1-client.crt",'
        'role="intermediate"}'
    )
    name = "etcd_pki_ca_certificate_not_after_timestamp_seconds"
    series = [
        sample(name, f"{3650 * DAY}+0x100", root),
        sample(name, f"{100 * DAY}+0x100", inter),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1d",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdPkiCaCertificateExpiring", "9d", None),
                    firing(
                        "EtcdPkiCaCertificateExpiring",
                        "11d",
                        {"host": "client-1", "role": "intermediate"},
                    ),
                ],
            }
        ],
    )


def test_etcd_member_down_and_no_leader(tmp_path: Path) -> None:
    member = '{job="etcd",instance="etcd-k8s-2:2390"}'
    series = [
        sample("up", "1 1 0+0x10", member),
        sample("etcd_server_has_leader", "1 1 1 0+0x10", member),
        sample("etcd_server_health_failures", "0 0 0 0 1+0x10", member),
    ]
    labels = {"job": "etcd", "instance": "etcd-k8s-2:2390"}
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdMemberDown", "4m", None),  # down for 2 minutes only
                    firing("EtcdMemberDown", "6m", labels),
                    firing("EtcdNoLeader", "3m", None),
                    firing("EtcdNoLeader", "5m", labels),
                    firing("EtcdMemberUnhealthy", "3m", None),
                    firing("EtcdMemberUnhealthy", "5m", labels),
                ],
            }
        ],
    )


# etcd's own series (etcd's monitoring mixin's alerts), of three members of the job `etcd`.
MEMBERS = ("etcd-k8s-1:2390", "etcd-k8s-2:2390", "etcd-k8s-3:2390")
MIB = 1024 * 1024
QUOTA = 2048 * MIB  # etcd's default backend quota
# The bucket bounds of the latency histograms here (etcd's are finer, powers of two).
BOUNDS = ("0.05", "0.1", "0.2", "0.4", "0.8", "1.6", "+Inf")
RANGE = {"grpc_service": "etcdserverpb.KV", "grpc_method": "Range"}


def _etcd(instance: str = MEMBERS[0], **more: str) -> str:
    """The labels of a member's series as Prometheus has them: `{job="etcd",instance=...}`."""
    labels = {"job": "etcd", "instance": instance, **more}
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def _counter(per_minute: list[int]) -> str:
    """A counter's samples, one a minute from 0: it rises by each minute's count."""
    total, values = 0, ["0"]
    for count in per_minute:
        total += count
        values.append(str(total))
    return " ".join(values)


def _latencies(
    name: str, minutes: list[str], instance: str = MEMBERS[0], **more: str
) -> list[dict[str, str]]:
    """A histogram's `_bucket` counters of 60 observations a minute, each minute's in the
    bucket up to `minutes[i]` seconds: its 99th percentile is just under that bound."""
    return [
        sample(
            f"{name}_bucket",
            _counter([60 if float(upper) <= float(le) else 0 for upper in minutes]),
            _etcd(instance, **more, le=le),
        )
        for le in BOUNDS
    ]


def _member(instance: str = MEMBERS[0], **more: str) -> dict[str, str]:
    return {"job": "etcd", "instance": instance, **more}


def test_etcd_too_few_members_for_a_quorum(tmp_path: Path) -> None:
    series = [
        sample("up", "1+0x10", _etcd(MEMBERS[0])),
        sample("up", "1 1 0+0x8", _etcd(MEMBERS[1])),
        sample("up", "1 1 1 1 0+0x6", _etcd(MEMBERS[2])),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdInsufficientMembers", "3m", None),  # two of three: a quorum
                    firing("EtcdInsufficientMembers", "6m", None),  # one, for 2 minutes only
                    firing("EtcdInsufficientMembers", "8m", {"job": "etcd"}),
                ],
            }
        ],
    )


def _leader_changes() -> list[dict[str, str]]:
    """Six elections, a minute apart from 21 m, as every member counts them."""
    changes = [1 if 20 <= minute < 26 else 0 for minute in range(60)]
    return [
        sample("etcd_server_leader_changes_seen_total", _counter(changes), _etcd(member))
        for member in MEMBERS
    ]


def test_etcd_many_leader_changes(tmp_path: Path) -> None:
    tests = [
        {
            "interval": "1m",
            "input_series": _leader_changes(),
            "alert_rule_test": [
                firing("EtcdHighNumberOfLeaderChanges", "22m", None),
                firing("EtcdHighNumberOfLeaderChanges", "33m", {"job": "etcd"}),
                firing("EtcdHighNumberOfLeaderChanges", "50m", None),  # none for 15 minutes
            ],
        }
    ]
    check_rules(tmp_path, tests)
    # Seven changes to alert: six do not.
    tests[0]["alert_rule_test"] = [firing("EtcdHighNumberOfLeaderChanges", "33m", None)]
    check_rules(tmp_path, tests, Thresholds(etcd_leader_changes=7))


def test_etcd_failed_grpc_requests_warn_then_go_critical(tmp_path: Path) -> None:
    # 10 Range requests a second; 2% of them fail from 10 m, 9% from 40 m.
    unavailable = [0] * 10 + [12] * 30 + [60] * 30
    name = "grpc_server_handled_total"
    series = [
        sample(name, "0+600x70", _etcd(grpc_type="unary", **RANGE, grpc_code="OK")),
        sample(name, _counter(unavailable), _etcd(grpc_type="unary", **RANGE, grpc_code="Unavailable")),
        # A client's mistake is no failure of etcd's.
        sample(name, "0+600x70", _etcd(grpc_type="unary", grpc_service="etcdserverpb.KV", grpc_method="Put", grpc_code="InvalidArgument")),
        sample(name, "0+600x70", _etcd(grpc_type="unary", grpc_service="etcdserverpb.KV", grpc_method="Put", grpc_code="OK")),
    ]  # fmt: skip
    labels = _member(**RANGE)
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdHighNumberOfFailedGRPCRequests", "5m", None),
                    firing("EtcdHighNumberOfFailedGRPCRequests", "15m", None),  # for 10m
                    firing("EtcdHighNumberOfFailedGRPCRequests", "30m", labels, ("warning",)),
                    firing("EtcdHighNumberOfFailedGRPCRequests", "45m", labels, ("warning",)),
                    firing("EtcdHighNumberOfFailedGRPCRequests", "65m", labels),
                ],
            }
        ],
    )


def _slow(minutes: int = 90) -> list[dict[str, str]]:
    """Fast requests, round trips and disk for 20 minutes, then slow ones; the WAL's fsyncs
    slower still from 50 m."""
    fast = ["0.05"] * 20
    return [
        *_latencies("grpc_server_handling_seconds", fast + ["0.4"] * (minutes - 20), grpc_type="unary", **RANGE),
        # Defragmenting takes its time: no alert.
        *_latencies("grpc_server_handling_seconds", ["1.6"] * minutes, grpc_type="unary", grpc_service="etcdserverpb.Maintenance", grpc_method="Defragment"),
        *_latencies("etcd_network_peer_round_trip_time_seconds", fast + ["0.2"] * (minutes - 20), To="8e9e05c52164694d"),
        *_latencies("etcd_disk_backend_commit_duration_seconds", fast + ["0.4"] * (minutes - 20)),
        *_latencies("etcd_disk_wal_fsync_duration_seconds", fast + ["0.8"] * 30 + ["1.6"] * (minutes - 50)),
    ]  # fmt: skip


def test_etcd_slow_requests_round_trips_fsyncs_and_commits(tmp_path: Path) -> None:
    member = _member()
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": _slow(),
                "alert_rule_test": [
                    firing("EtcdGRPCRequestsSlow", "15m", None),
                    firing("EtcdGRPCRequestsSlow", "25m", None),  # for 10 minutes
                    firing("EtcdGRPCRequestsSlow", "35m", _member(**RANGE)),
                    firing("EtcdMemberCommunicationSlow", "15m", None),
                    firing("EtcdMemberCommunicationSlow", "35m", _member(To="8e9e05c52164694d")),
                    firing("EtcdHighCommitDurations", "15m", None),
                    firing("EtcdHighCommitDurations", "35m", member),
                    firing("EtcdHighFsyncDurations", "15m", None),
                    firing("EtcdHighFsyncDurations", "40m", member, ("warning",)),
                    firing("EtcdHighFsyncDurations", "80m", member),
                ],
            }
        ],
    )


def test_etcd_latency_thresholds_are_settings(tmp_path: Path) -> None:
    # 0.4 s commits and 0.2 s round trips are within these.
    limits = Thresholds(etcd_commit_seconds=0.5, etcd_peer_rtt_seconds=0.3)
    assert "> 0.5" in rules_text(limits) and "> 0.3" in rules_text(limits)
    tests = [
        {
            "interval": "1m",
            "input_series": _slow(),
            "alert_rule_test": [
                firing("EtcdHighCommitDurations", "35m", None),
                firing("EtcdMemberCommunicationSlow", "35m", None),
            ],
        }
    ]
    check_rules(tmp_path, tests, limits)


def test_etcd_failed_proposals(tmp_path: Path) -> None:
    series = [
        # 10 a second from 10 m on one member, 2 a second on another.
        sample("etcd_server_proposals_failed_total", _counter([0] * 10 + [600] * 40), _etcd()),
        sample("etcd_server_proposals_failed_total", "0+120x50", _etcd(MEMBERS[1])),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdHighNumberOfFailedProposals", "25m", None),  # for 15 minutes
                    firing("EtcdHighNumberOfFailedProposals", "40m", _member()),
                ],
            }
        ],
    )


def test_etcd_database_near_its_quota_growing_toward_it_and_fragmented(tmp_path: Path) -> None:
    """Sampled every 10 minutes for 12 hours: etcd-k8s-1's database grows by 50 MB every 10
    minutes from 6 h, etcd-k8s-2's fills 98% of its quota, etcd-k8s-3's is 30% in use, and
    client-1's is too but small."""
    size, in_use = "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes"
    small = "client-1:2390"
    growing = "200000000+0x35 200000000+50000000x36"
    series = [
        *(sample("etcd_server_quota_backend_bytes", f"{QUOTA}+0x72", _etcd(m)) for m in (*MEMBERS, small)),
        sample(size, growing, _etcd(MEMBERS[0])),
        sample(in_use, growing, _etcd(MEMBERS[0])),
        sample(size, "2100000000+0x72", _etcd(MEMBERS[1])),
        sample(in_use, "2100000000+0x72", _etcd(MEMBERS[1])),
        sample(size, f"{1024 * MIB}+0x72", _etcd(MEMBERS[2])),
        sample(in_use, f"{300 * MIB}+0x72", _etcd(MEMBERS[2])),
        sample(size, f"{150 * MIB}+0x72", _etcd(small)),
        sample(in_use, f"{50 * MIB}+0x72", _etcd(small)),
    ]  # fmt: skip
    check_rules(
        tmp_path,
        [
            {
                "interval": "10m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdDatabaseQuotaLowSpace", "0m", None),  # for 10 minutes
                    firing("EtcdDatabaseQuotaLowSpace", "30m", _member(MEMBERS[1])),
                    firing("EtcdDatabaseHighFragmentationRatio", "0m", None),
                    firing("EtcdDatabaseHighFragmentationRatio", "30m", _member(MEMBERS[2])),
                    firing("EtcdExcessiveDatabaseGrowth", "5h", None),
                    firing("EtcdExcessiveDatabaseGrowth", "11h", _member(MEMBERS[0])),
                ],
            }
        ],
    )


@pytest.mark.parametrize(
    ("rule_files", "loaded"),
    [
        (["etcd-step-pki.rules.yml"], True),
        (["/etc/prometheus/etcd-step-pki.rules.yml"], True),
        (["*.rules.yml"], True),
        (["rules/*.yml"], False),
        ([], False),
        (None, False),
    ],
)
def test_loads_rules_reads_rule_files_relative_to_the_configuration(
    rule_files: list[str] | None, loaded: bool
) -> None:
    config = yaml.safe_dump({"global": {}, "rule_files": rule_files})
    path = "/etc/prometheus/etcd-step-pki.rules.yml"
    assert loads_rules(config, "/etc/prometheus/prometheus.yml", path) is loaded


def test_loads_rules_is_false_for_no_yaml_mapping() -> None:
    assert not loads_rules("- a\n- b\n", "/etc/prometheus/prometheus.yml", "/x")
    assert not loads_rules("a: [\n", "/etc/prometheus/prometheus.yml", "/x")


def _metrics(tmp_path: Path, expires_in: str | None) -> dict[str, str]:
    """The helper's `write` action on a 30-day certificate bundled with a 100-day
    intermediate: `{metric{role}: value}`."""
    import re

    from etcd_step_pki.operations.certificates import StepNode
    from etcd_step_pki.operations.renewal import RenewalSchedule, metrics_script

    ssl = tmp_path / "ssl"
    ssl.mkdir()

    def self_signed(name: str, days: int, out: Path) -> str:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(tmp_path / f"{name}.key"), "-out", str(out),
             "-days", str(days), "-subj", f"/CN={name}"],
            check=True, capture_output=True,
        )  # fmt: skip
        return out.read_text()

    self_signed("root", 3650, ssl / "root_ca.crt")
    bundle = self_signed("leaf", 30, tmp_path / "leaf.pem")
    bundle += self_signed("intermediate", 100, tmp_path / "intermediate.pem")
    (ssl / "leaf.crt").write_text(bundle)
    helper = tmp_path / "helper.sh"
    node = StepNode(bin_dir="/nonexistent", ssl_dir=str(ssl))
    schedule = RenewalSchedule(metrics_dir=str(tmp_path / "textfiles"), expires_in=expires_in)
    helper.write_text(metrics_script(node, schedule))
    subprocess.run(["sh", str(helper), "write", "leaf-peer", "peer", str(ssl / "leaf.crt")],
                   check=True)  # fmt: skip
    text = (tmp_path / "textfiles" / "etcd_pki_leaf-peer.prom").read_text()
    found = {}
    for name, role, value in re.findall(r"^(\w+)\{[^}]*?(?:role=\"(\w+)\")?\} (\S+)$", text, re.M):
        found[f"{name}{role and '/' + role}"] = value
    return found


@pytest.mark.parametrize(
    ("expires_in", "due_after_start"),
    [(None, 30 * DAY * 66 // 100), ("80%", 30 * DAY * 80 // 100), ("240h", 20 * DAY)],
)
def test_the_helper_writes_when_renewal_is_due_by_needs_renewals_rule(
    tmp_path: Path, expires_in: str | None, due_after_start: int
) -> None:
    found = _metrics(tmp_path, expires_in)
    start = int(found["etcd_pki_certificate_not_before_timestamp_seconds"])
    end = int(found["etcd_pki_certificate_not_after_timestamp_seconds"])
    assert end - start == 30 * DAY
    assert int(found["etcd_pki_renewal_due_timestamp_seconds"]) - start == due_after_start
    root = int(found["etcd_pki_ca_certificate_not_after_timestamp_seconds/root"])
    intermediate = int(found["etcd_pki_ca_certificate_not_after_timestamp_seconds/intermediate"])
    # Made a moment apart: within seconds of each other.
    assert abs(root - start - 3650 * DAY) < 10 and abs(intermediate - start - 100 * DAY) < 10
    assert found["etcd_pki_ca_up"] == "0"  # no step to ask the CA with


DASHBOARD = Path(__file__).resolve().parents[2] / "dashboards" / "etcd-step-pki.json"
# etcd's and Prometheus's own series the dashboard and the rules read.
FOREIGN = {
    "up",
    "ALERTS",
    "etcd_server_has_leader",
    "etcd_server_health_failures",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_failed_total",
    "etcd_server_quota_backend_bytes",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_disk_wal_fsync_duration_seconds_bucket",
    "etcd_disk_backend_commit_duration_seconds_bucket",
    "etcd_network_peer_round_trip_time_seconds_bucket",
    "grpc_server_handled_total",
}


def dashboard_queries() -> list[str]:
    """Every PromQL query of the Grafana dashboard."""
    document = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in document["panels"] for target in panel["targets"]]


def test_dashboard_queries_are_valid_promql_on_series_that_exist(tmp_path: Path) -> None:
    import re

    templates = Path(__file__).resolve().parents[2] / "templates"
    written = {
        name
        for helper in (
            "etcd-pki-renewal-metrics.sh.j2",
            "etcd-pki-ca-probe.sh.j2",
            "etcd-pki-galera-metrics.sh.j2",
        )
        for name in re.findall(
            r"^# TYPE (etcd_pki_\w+) gauge$", (templates / helper).read_text(), re.M
        )
    }
    queries = dashboard_queries()
    for query in queries:
        names = set(re.findall(r"\b(etcd_\w+|grpc_server_\w+|up|ALERTS)\b", query))
        assert names and names <= written | FOREIGN, query
    # Each query parses: promtool checks them as recording rules.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    out = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # A panel shows each series of etcd's that an alert reads, but the gRPC latencies: etcd
    # has them only with --metrics=extensive, and a panel of them would show nothing without.
    etcd = r"\b(etcd_(?!pki_)\w+|grpc_server_\w+|up)\b"
    read = {name for rule in alert_rules_loaded() for name in re.findall(etcd, rule["expr"])}
    shown = {name for query in queries for name in re.findall(etcd, query)}
    assert read - shown == {"grpc_server_handling_seconds_bucket"}
    # The alerts panel shows every alert of the rules.
    pattern = next(q for q in queries if q.startswith("ALERTS"))
    alerts = re.search(r'alertname=~"([^"]+)"', pattern)
    assert alerts is not None
    assert all(re.fullmatch(alerts.group(1), rule["alert"]) for rule in alert_rules_loaded())
