"""The CA's Galera nodes watched: what the metrics script writes from MariaDB's status (and
when MariaDB does not answer), what root accepts of its file, its units, and the alerts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from etcd_step_pki.operations.galera_metrics import galera_rules, metrics_script, metrics_units
from etcd_step_pki.operations.monitoring import Thresholds, _rule
from tests.unit.promql import check_rules, firing, sample

STATUS = (
    "wsrep_cluster_size\t3\nwsrep_cluster_status\tPrimary\nwsrep_flow_control_paused\t0.25\n"
    "wsrep_local_state_comment\tSynced\nwsrep_ready\tON\n"
)


def _run(tmp_path: Path, status: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """The script with a `mariadb` on PATH that prints `status` (None: fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "mariadb"
    body = f"printf '%s' '{status}'" if status is not None else "exit 1"
    fake.write_text(f"#!/bin/sh\n{body}\n")
    fake.chmod(0o755)
    script = tmp_path / "galera-metrics"
    script.write_text(metrics_script(3))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["sh", str(script), *args], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip


def _metrics(path: Path) -> dict[str, str]:
    return {
        line.split("{")[0]: line.split()[-1]
        for line in path.read_text().splitlines()
        if not line.startswith("#")
    }


def test_a_synced_node_is_primary_with_every_voter(tmp_path: Path) -> None:
    out = tmp_path / "galera.prom"
    assert _run(tmp_path, STATUS, "write", str(out)).returncode == 0
    assert _metrics(out) | {"etcd_pki_galera_timestamp_seconds": "t"} == {
        "etcd_pki_galera_up": "1",
        "etcd_pki_galera_primary": "1",
        "etcd_pki_galera_synced": "1",
        "etcd_pki_galera_ready": "1",
        "etcd_pki_galera_cluster_size": "3",
        "etcd_pki_galera_voters": "3",
        "etcd_pki_galera_flow_control_paused": "0.25",
        "etcd_pki_galera_timestamp_seconds": "t",
    }
    assert _run(tmp_path, None, "check", str(out)).returncode == 0


def test_a_node_whose_mariadb_does_not_answer_is_down_and_not_primary(tmp_path: Path) -> None:
    out = tmp_path / "galera.prom"
    assert _run(tmp_path, None, "write", str(out)).returncode == 0
    found = _metrics(out)
    assert found["etcd_pki_galera_up"] == "0" and found["etcd_pki_galera_primary"] == "0"
    assert found["etcd_pki_galera_cluster_size"] == "0"


@pytest.mark.parametrize(
    "tampered",
    [
        'etcd_pki_ca_up{host="x"} 1',
        'etcd_pki_galera_primary{host="x",ca="y"} 1',
        'etcd_pki_galera_primary{host="x"} 1 1',
    ],
)
def test_root_refuses_anything_but_the_nodes_metrics(tmp_path: Path, tampered: str) -> None:
    out = tmp_path / "galera.prom"
    _run(tmp_path, STATUS, "write", str(out))
    out.write_text(out.read_text() + tampered + "\n")
    assert _run(tmp_path, None, "check", str(out)).returncode != 0


def test_the_units_read_as_mariadbs_account_and_root_only_takes_the_file() -> None:
    units = metrics_units("mysql", "/opt/bin", "/var/lib/node-exporter", "30s")
    service = units["etcd-pki-galera-metrics.service"]
    assert "User=mysql" in service
    assert (
        "ExecStart=/opt/bin/etcd-pki-galera-metrics write %t/etcd-pki-galera-metrics/galera.prom"
        in service
    )
    assert "ExecStartPost=+" in service and "ProtectSystem=strict" in service
    assert "OnUnitActiveSec=30s" in units["etcd-pki-galera-metrics.timer"]


def _both(name: str, at: str) -> dict:
    """`name` firing at `at` for both nodes."""
    alerts = [firing(name, at, {"host": h})["exp_alerts"][0] for h in ("etcd-k8s-1", "etcd-k8s-2")]
    return {"alertname": name, "eval_time": at, "exp_alerts": alerts}


def test_the_alerts_tell_a_cut_off_node_a_missing_voter_and_stopped_reads(tmp_path: Path) -> None:
    one, two = '{host="etcd-k8s-1"}', '{host="etcd-k8s-2"}'
    series = [
        # Minute by minute: all three voters for 5 minutes; then the arbitrator is gone
        # (both nodes see 2 of 3); from 10 minutes etcd-k8s-2 is cut off (not primary).
        sample("etcd_pki_galera_primary", "1x30", one),
        sample("etcd_pki_galera_primary", "1x10 0x20", two),
        sample("etcd_pki_galera_cluster_size", "3x5 2x25", one),
        sample("etcd_pki_galera_cluster_size", "3x5 2x5 1x20", two),
        sample("etcd_pki_galera_voters", "3x30", one),
        sample("etcd_pki_galera_voters", "3x30", two),
        sample("etcd_pki_galera_flow_control_paused", "0x5 0.5x25", one),
        sample("etcd_pki_galera_timestamp_seconds", "0+60x30", one),
        # etcd-k8s-2's reads stop after 10 minutes.
        sample("etcd_pki_galera_timestamp_seconds", "0+60x10 600x20", two),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdPkiGaleraVoterMissing", "5m", None),
                    _both("EtcdPkiGaleraVoterMissing", "8m"),
                    firing("EtcdPkiGaleraNotPrimary", "11m", None),
                    firing("EtcdPkiGaleraNotPrimary", "13m", {"host": "etcd-k8s-2"}),
                    firing("EtcdPkiGaleraFlowControl", "14m", None),
                    firing("EtcdPkiGaleraFlowControl", "16m", {"host": "etcd-k8s-1"}),
                    firing("EtcdPkiGaleraMetricsStopped", "21m", {"host": "etcd-k8s-2"}),
                ],
            }
        ],
        Thresholds(ca_down_after="2m"),
    )
    assert [r["alert"] for r in galera_rules("2m", _rule)] == [
        "EtcdPkiGaleraNotPrimary",
        "EtcdPkiGaleraVoterMissing",
        "EtcdPkiGaleraFlowControl",
        "EtcdPkiGaleraMetricsStopped",
    ]


def test_status_reports_each_database_node_and_what_needs_attention() -> None:
    from etcd_step_pki.deploys.components.status import (
        database_attention,
        database_part,
        format_text,
    )
    from etcd_step_pki.facts.galera import GaleraStatus

    found = GaleraStatus().process(
        ["running yes", *(line.replace("\t", " ") for line in STATUS.splitlines())]
    )
    part = database_part(found, 3)
    assert part == {
        "running": True,
        "component": "Primary",
        "state": "Synced",
        "size": 3,
        "voters": 3,
    }
    assert database_attention("etcd-k8s-1", part) == []
    report = {"host": "etcd-k8s-1", "ca_database": part, "attention": []}
    assert "etcd-k8s-1 CA database: Primary Synced voters=3/3" in format_text(report)
    cut = database_part(GaleraStatus().process(["running yes", "wsrep_cluster_status non-Primary",
                                                "wsrep_cluster_size 1"]), 3)  # fmt: skip
    assert database_attention("etcd-k8s-2", cut) == [
        "etcd-k8s-2: the CA's database node is non-Primary, not Primary",
        "etcd-k8s-2: the CA's database node is none, not Synced",
        "etcd-k8s-2: the CA's database node sees 1 of 3 voters",
    ]
    down = database_part(GaleraStatus().process(["running no"]), 3)
    assert database_attention("etcd-k8s-2", down) == [
        "etcd-k8s-2: the CA's database node (MariaDB) is not running"
    ]
