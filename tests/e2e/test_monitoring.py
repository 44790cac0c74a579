"""Alerting end to end: Debian's Prometheus on a host of the `prometheus` group scrapes Debian's
node-exporter (textfile collector) on every member and client, and etcd's metrics port; the
rules deploys/monitoring.py installs fire when a certificate is made overdue, and clear once it
is renewed."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import fresh_scenario
from tests.harness.hosts import Scenario, TestHost, docker_exec, scenario_hosts, set_ssh_user
from tests.harness.pyinfra_run import run_pyinfra
from tests.unit.test_monitoring import dashboard_queries

pytestmark = pytest.mark.e2e

SUBNET = "172.28.79.0/24"
MONITOR = "monitor-1"
NODES = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1")
TEXTFILES = "/var/lib/prometheus/node-exporter"  # Debian's textfile collector directory
METRICS_PORT = 2390
RULES = "/etc/prometheus/etcd-step-pki.rules.yml"
CLIENT_UNIT = "step-renew-client-1-client"


def _prometheus_config(scenario: Scenario, *, load_rules: bool) -> str:
    """The operator's prometheus.yml: node-exporter on every node, etcd's metrics port."""
    members = [h.address for h in scenario.hosts if "etcd" in h.groups]
    config: dict[str, Any] = {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "scrape_configs": [
            {
                "job_name": "node",
                "static_configs": [
                    {"targets": [f"{scenario.host(n).address}:9100" for n in NODES]}
                ],
            },
            {
                "job_name": "etcd",
                "static_configs": [{"targets": [f"{a}:{METRICS_PORT}" for a in members]}],
            },
        ],
    }
    if load_rules:
        config["rule_files"] = ["etcd-step-pki.rules.yml"]
    return json.dumps(config)  # JSON is YAML


def _write_config(scenario: Scenario, *, load_rules: bool) -> None:
    text = _prometheus_config(scenario, load_rules=load_rules)
    docker_exec(
        scenario,
        MONITOR,
        f"printf '%s\\n' '{text}' > /etc/prometheus/prometheus.yml"
        " && systemctl reload-or-restart prometheus",
    )


def _api(scenario: Scenario, path: str) -> Any:
    out = docker_exec(scenario, MONITOR, f"curl -sf 'http://127.0.0.1:9090/api/v1/{path}'")
    return json.loads(out.stdout)["data"]


def _query(scenario: Scenario, expr: str) -> list[dict[str, Any]]:
    from urllib.parse import quote

    return list(_api(scenario, f"query?query={quote(expr)}")["result"])


def _firing(scenario: Scenario) -> set[tuple[str, str]]:
    """`{(alert name, host or instance)}` of every firing alert."""
    alerts = _api(scenario, "alerts")["alerts"]
    return {
        (a["labels"]["alertname"], a["labels"].get("host") or a["labels"].get("instance", ""))
        for a in alerts
        if a["state"] == "firing"
    }


def _wait(what: str, check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(2)


@pytest.fixture(scope="module")
def monitored(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-mon", SUBNET, release_archives)
    address = str(ipaddress.ip_network(SUBNET)[200])
    scenario.hosts.append(TestHost(MONITOR, address, ("prometheus",)))
    scenario.extra.update(
        metrics_textfile_dir=TEXTFILES, etcd_metrics_port=METRICS_PORT, ca_probe_interval="6s"
    )
    with scenario_hosts(scenario) as started:
        # The operator's monitoring, already there: node-exporter on every node, Prometheus
        # on the monitor (its configuration not yet loading this tool's rules).
        for name in NODES:
            docker_exec(started, name, "systemctl enable --now prometheus-node-exporter")
        _write_config(started, load_rules=False)
        docker_exec(started, MONITOR, "systemctl enable --now prometheus")
        yield started


def test_rules_are_refused_until_prometheus_loads_them(monitored: Scenario) -> None:
    run = run_pyinfra(monitored, "deploys/monitoring.py", check=False)
    assert run.returncode != 0 and "does not load" in run.output
    assert docker_exec(monitored, MONITOR, f"test -e {RULES}", check=False).returncode == 1
    _write_config(monitored, load_rules=True)


def test_cluster_installs_metrics_and_rules_and_a_rerun_changes_nothing(
    monitored: Scenario,
) -> None:
    run_pyinfra(monitored, "deploys/cluster.py")
    assert run_pyinfra(monitored, "deploys/cluster.py").changes == {}
    assert run_pyinfra(monitored, "deploys/monitoring.py").changes == {}
    mode = docker_exec(monitored, MONITOR, f"stat -c '%a %U' {RULES}").stdout.split()
    assert mode == ["644", "root"]
    groups = _api(monitored, "rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"EtcdPkiRenewalOverdue", "EtcdPkiCaDown", "EtcdNoLeader"} <= names
    # Every certificate's metrics are there from the first run, not only after its timer.
    series = _wait(
        "every certificate's metrics",
        lambda: (
            found
            if len(found := _query(monitored, "etcd_pki_renewal_due_timestamp_seconds")) == 10
            else None
        ),
    )
    assert {item["metric"]["host"] for item in series} == set(NODES)
    # Each member's revocation list: refreshed, and when the CA issued it (from the first run).
    crls = _wait(
        "every member's CRL metrics",
        lambda: (
            found
            if len(found := _query(monitored, "etcd_pki_crl_last_refresh_result == 1")) == 3
            else None
        ),
    )
    assert {item["metric"]["host"] for item in crls} == set(NODES) - {"client-1"}
    issued = _query(monitored, "time() - etcd_pki_crl_this_update_timestamp_seconds")
    assert len(issued) == 3 and all(0 < float(i["value"][1]) < 86400 for i in issued)
    leaders = _wait(
        "etcd's metrics", lambda: _query(monitored, 'etcd_server_has_leader{job="etcd"} == 1')
    )
    assert len(leaders) == 3
    roles = _query(
        monitored, "count by (role) (etcd_pki_ca_certificate_not_after_timestamp_seconds)"
    )
    assert {item["metric"]["role"] for item in roles} == {"root", "intermediate"}
    time.sleep(6)  # a few evaluations
    assert _firing(monitored) == set()
    # Every panel of the Grafana dashboard shows data (but the firing alerts: none, and the
    # CA database's panels: this layout has none; test_active_active reads its metrics).
    for query in dashboard_queries():
        if not query.startswith("ALERTS") and "etcd_pki_galera_" not in query:
            assert _query(monitored, query), query
    # The status report takes the monitor (in no etcd group) in its stride.
    report = run_pyinfra(monitored, "deploys/status.py", "--data", "status_format=json")
    document = json.loads(report.stdout.strip().splitlines()[-1])
    assert document["ok"] is True
    assert {h["host"]: h["attention"] for h in document["hosts"]}[MONITOR] == []


def test_a_new_threshold_is_checked_written_and_loaded_as_a_sudo_user(
    monitored: Scenario,
) -> None:
    ten_days = ("--data", "alert_certificate_expiry_days=10")
    written = docker_exec(monitored, MONITOR, f"sha256sum {RULES}").stdout
    set_ssh_user(monitored, "admin")
    try:
        # --dry shows the change and makes none.
        dry = run_pyinfra(monitored, "deploys/monitoring.py", "--sudo", "--dry", *ten_days)
        assert dry.returncode == 0
        assert docker_exec(monitored, MONITOR, f"sha256sum {RULES}").stdout == written
        run = run_pyinfra(monitored, "deploys/monitoring.py", "--sudo", *ten_days)
        assert run.changes == {
            MONITOR: ["Alert rules | Alert rules for certificates, the CA and etcd"]
        }
        assert run_pyinfra(monitored, "deploys/monitoring.py", "--sudo", *ten_days).changes == {}
    finally:
        set_ssh_user(monitored, "root")
    assert docker_exec(monitored, MONITOR, f"stat -c '%a %U' {RULES}").stdout.split() == [
        "644",
        "root",
    ]

    def loaded() -> bool:
        rules = {
            r["name"]: r["query"] for g in _api(monitored, "rules")["groups"] for r in g["rules"]
        }
        return "< 864000" in rules["EtcdPkiCertificateExpiring"]

    _wait("Prometheus to load the new rules", loaded)
    run_pyinfra(monitored, "deploys/monitoring.py")  # back to the defaults


def test_an_overdue_certificate_fires_and_clears_once_renewed(monitored: Scenario) -> None:
    # The client's renewal window set wider than its certificate's lifetime: due since
    # long before it was issued; then the CA goes down, so its renewal fails.
    overdue = ("--data", "renewal_expires_in=26280h")
    run_pyinfra(monitored, "deploys/certs.py", *overdue, "--limit", "client-1")
    docker_exec(monitored, "etcd-k8s-1", "systemctl stop step-ca")
    try:
        docker_exec(monitored, "client-1", f"systemctl start {CLIENT_UNIT}.service", check=False)
        firing = _wait(
            "the overdue alert",
            lambda: (
                got
                if {("EtcdPkiRenewalOverdue", "client-1"), ("EtcdPkiRenewalFailed", "client-1")}
                <= (got := _firing(monitored))
                else None
            ),
        )
        assert ("EtcdPkiCaDown", "client-1") in firing
        # Only the client: the members' certificates are not due.
        assert {host for _, host in firing} == {"client-1"}
    finally:
        docker_exec(monitored, "etcd-k8s-1", "systemctl start step-ca")
    run_pyinfra(monitored, "deploys/certs.py", "--limit", "client-1")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    time.sleep(2)
    run_pyinfra(
        monitored, "deploys/renew.py", "--limit", "client-1",
        "--data", f"renew_before={now}",
    )  # fmt: skip
    _wait("every alert to clear", lambda: _firing(monitored) == set() or None)


def test_failing_crl_refreshes_fire_and_clear(monitored: Scenario) -> None:
    # Refreshes failing for more than a second alert (the threshold is a setting).
    run_pyinfra(monitored, "deploys/monitoring.py", "--data", "alert_crl_refresh_failing_after=1s")
    refresh = "systemctl start etcd-pki-crl.service"
    docker_exec(monitored, "etcd-k8s-1", "systemctl stop step-ca")
    try:
        assert docker_exec(monitored, "etcd-k8s-2", refresh, check=False).returncode != 0
        firing = _wait(
            "the CRL alert",
            lambda: (
                got
                if ("EtcdPkiCrlRefreshFailing", "etcd-k8s-2") in (got := _firing(monitored))
                else None
            ),
        )
        assert {host for name, host in firing if name.startswith("EtcdPkiCrl")} == {"etcd-k8s-2"}
    finally:
        docker_exec(monitored, "etcd-k8s-1", "systemctl start step-ca")
    _wait(
        "step-ca",
        lambda: docker_exec(monitored, "etcd-k8s-2", refresh, check=False).returncode == 0,
    )
    _wait("every alert to clear", lambda: _firing(monitored) == set() or None)
    run_pyinfra(monitored, "deploys/monitoring.py")  # back to the defaults


def test_a_ca_that_stops_answering_fires_within_seconds_and_clears(monitored: Scenario) -> None:
    """Every host probes the CA every `ca_probe_interval` (6 s here), as the etcd account;
    root puts the metrics in place. The CA stopped: the alert fires from the probes, not
    from the next daily renewal check; started again: it clears."""
    for host in NODES:
        docker_exec(monitored, host, "systemctl is-active etcd-pki-ca-probe.timer")
        found = docker_exec(monitored, host, f"stat -c '%a %U' {TEXTFILES}/etcd_pki_ca_probe.prom")
        assert found.stdout.split() == ["644", "root"]
    up = _wait(
        "every host's probe",
        lambda: (
            found if len(found := _query(monitored, "etcd_pki_ca_probe_up == 1")) == 4 else None
        ),
    )
    # One CA: the primary's URL (standby cert-managers keep their step-ca stopped).
    assert len({item["metric"]["ca"] for item in up}) == 1
    run_pyinfra(monitored, "deploys/monitoring.py", "--data", "alert_ca_down_after=1s")
    docker_exec(monitored, "etcd-k8s-1", "systemctl stop step-ca")
    try:
        _wait(
            "the CA alert",
            lambda: ("EtcdPkiCaUnreachable", "") in _firing(monitored) or None,
            timeout=60,
        )
        assert len(_query(monitored, "etcd_pki_ca_probe_up == 0")) == 4
    finally:
        docker_exec(monitored, "etcd-k8s-1", "systemctl start step-ca")
    _wait("every alert to clear", lambda: _firing(monitored) == set() or None)
    run_pyinfra(monitored, "deploys/monitoring.py")  # back to the defaults
