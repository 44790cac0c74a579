"""The CRL's metrics: what the CRL timer's helper writes after a refresh (on a real list),
and the alert rules on them under promtool."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from etcd_step_pki.operations.monitoring import Thresholds
from etcd_step_pki.operations.revocation import CRL_METRICS_FILE, crl_metrics_script
from tests.unit.promql import check_rules, firing, sample

HOUR = 3600
CRL = '{host="etcd-k8s-1",file="/etc/etcd/ssl/ca.crl"}'
LABELS = {"host": "etcd-k8s-1", "file": "/etc/etcd/ssl/ca.crl"}


def _crl(path: Path, issued: datetime.datetime, hours: int) -> None:
    """A CRL (DER) issued at `issued`, superseded `hours` later."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intermediate")])
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(issued)
        .next_update(issued + datetime.timedelta(hours=hours))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(crl.public_bytes(serialization.Encoding.DER))


def _written(tmp_path: Path, result: str) -> dict[str, int]:
    """Runs the helper as the CRL unit's ExecStopPost does, with `SERVICE_RESULT`."""
    helper = tmp_path / "helper.sh"
    helper.write_text(crl_metrics_script(str(tmp_path / "textfiles"), str(tmp_path / "ca.crl")))
    env = {**os.environ, "SERVICE_RESULT": result}
    subprocess.run(["sh", str(helper)], check=True, env=env)
    text = (tmp_path / "textfiles" / CRL_METRICS_FILE).read_text()
    assert f'file="{tmp_path / "ca.crl"}"' in text
    return {name: int(value) for name, value in re.findall(r"^(\w+)\{[^}]*\} (\S+)$", text, re.M)}


def test_the_helper_writes_the_refresh_s_result_and_the_list_s_times(tmp_path: Path) -> None:
    issued = datetime.datetime(2026, 12, 1, 6, 0, tzinfo=datetime.UTC)
    _crl(tmp_path / "ca.crl", issued, 24)
    os.utime(tmp_path / "ca.crl", (1_700_000_000, 1_700_000_000))
    found = _written(tmp_path, "success")
    assert found["etcd_pki_crl_last_refresh_result"] == 1
    assert found["etcd_pki_crl_this_update_timestamp_seconds"] == int(issued.timestamp())
    assert found["etcd_pki_crl_next_update_timestamp_seconds"] == int(issued.timestamp()) + 86400
    assert found["etcd_pki_crl_last_success_timestamp_seconds"] == 1_700_000_000
    # A failed refresh leaves the list in place: its times stay, the result says so.
    assert _written(tmp_path, "exit-code")["etcd_pki_crl_last_refresh_result"] == 0
    assert (tmp_path / "textfiles" / CRL_METRICS_FILE).stat().st_mode & 0o777 == 0o644


def test_no_list_in_place_is_a_failure_with_no_times(tmp_path: Path) -> None:
    found = _written(tmp_path, "exit-code")
    assert found["etcd_pki_crl_last_refresh_result"] == 0
    assert found["etcd_pki_crl_this_update_timestamp_seconds"] == 0


def _refreshes(result: str, success: str, next_update: str, written: str) -> list[dict[str, str]]:
    """The CRL helper's series, hourly: each argument is one metric's promtool values."""
    names = ("last_refresh_result", "last_success_timestamp_seconds")
    names += ("next_update_timestamp_seconds", "metrics_timestamp_seconds")
    values = (result, success, next_update, written)
    return [sample(f"etcd_pki_crl_{n}", v, CRL) for n, v in zip(names, values, strict=True)]


def test_failing_refreshes_alert_after_the_threshold_then_the_list_expires(
    tmp_path: Path,
) -> None:
    # Refreshed hourly until 2 h, failing from 3 h on; the list is superseded at 10 h.
    series = _refreshes("1 1 1 0+0x20", f"0 {HOUR} {2 * HOUR}+0x21", f"{10 * HOUR}+0x23",
                        f"0+{HOUR}x23")  # fmt: skip
    tests = [
        firing("EtcdPkiCrlRefreshFailing", "2h", None),
        firing("EtcdPkiCrlRefreshFailing", "8h", None),  # failing, but for 6 h only
        firing("EtcdPkiCrlRefreshFailing", "9h", LABELS),
        firing("EtcdPkiCrlExpired", "10h", None),
        firing("EtcdPkiCrlExpired", "11h", LABELS),
        firing("EtcdPkiCrlRefreshesStopped", "20h", None),
    ]
    check_rules(tmp_path, [{"interval": "1h", "input_series": series, "alert_rule_test": tests}])
    # The threshold is a setting (alert_crl_refresh_failing_after).
    limits = Thresholds(crl_refresh_failing_after="150m")
    tests = [
        firing("EtcdPkiCrlRefreshFailing", "4h", None),
        firing("EtcdPkiCrlRefreshFailing", "5h", LABELS, limits=limits),
    ]
    check_rules(
        tmp_path, [{"interval": "1h", "input_series": series, "alert_rule_test": tests}], limits
    )


def test_refreshes_that_stopped_alert(tmp_path: Path) -> None:
    # The timer's last run at 4 h.
    last = f"0+{HOUR}x4 {4 * HOUR}+0x76"
    series = _refreshes("1+0x80", last, f"{1000 * HOUR}+0x80", last)
    tests = [
        firing("EtcdPkiCrlRefreshesStopped", "53h", None),
        firing("EtcdPkiCrlRefreshesStopped", "55h", LABELS),
        firing("EtcdPkiCrlRefreshFailing", "70h", None),  # no refresh failed
    ]
    check_rules(tmp_path, [{"interval": "1h", "input_series": series, "alert_rule_test": tests}])
