"""The CA probe (operations/ca_probe.py): what it writes after asking a CA that answers over
TLS and one that does not, what root accepts of a file the probe's account wrote, its units,
its setting, and the alerts on its metrics under promtool."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import os
import re
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from etcd_step_pki.deploys.settings import SettingsError, validate_inventory
from etcd_step_pki.operations.ca_probe import probe_rules, probe_script, probe_units
from etcd_step_pki.operations.monitoring import Thresholds, _rule
from tests.harness.served import served
from tests.unit.promql import check_rules, firing, sample
from tests.unit.test_settings import _inventory


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own root) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    crt, pem = tmp_path / "root.crt", tmp_path / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return crt, pem


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}\n' if self.path == "/health" else b"{}"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ca(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A CA's /health over TLS on 127.0.0.1, and the root that proves it."""
    crt, key = _certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with served(server):
        yield f"https://127.0.0.1:{server.server_address[1]}", crt


def _probe(tmp_path: Path, urls: list[str], root: Path) -> tuple[Path, Path]:
    script = tmp_path / "etcd-pki-ca-probe"
    script.write_text(probe_script(urls, str(root)))
    script.chmod(0o755)
    out = tmp_path / "ca.prom"
    subprocess.run([str(script), "probe", str(out)], check=True, timeout=30)
    return script, out


def _values(text: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))


def test_a_ca_that_answers_is_up_and_one_that_does_not_is_down(tmp_path: Path, ca) -> None:
    url, root = ca
    down = "https://127.0.0.1:1"
    script, out = _probe(tmp_path, [url, down], root)
    values = _values(out.read_text())
    host = os.uname().nodename
    assert values[f'etcd_pki_ca_probe_up{{host="{host}",ca="{url}"}}'] == "1"
    assert values[f'etcd_pki_ca_probe_up{{host="{host}",ca="{down}"}}'] == "0"
    assert re.fullmatch(
        r"\d+\.\d{3}", values[f'etcd_pki_ca_probe_duration_seconds{{host="{host}",ca="{url}"}}']
    )
    assert values[f'etcd_pki_ca_probe_timestamp_seconds{{host="{host}"}}'].isdigit()
    # Root takes the file only as the probe writes it.
    assert subprocess.run([str(script), "check", str(out)]).returncode == 0


def test_a_ca_whose_certificate_the_root_does_not_prove_is_down(tmp_path: Path, ca) -> None:
    url, _ = ca
    (tmp_path / "other").mkdir()
    other, _ = _certificate(tmp_path / "other")
    _, out = _probe(tmp_path, [url], other)
    assert (
        _values(out.read_text())[f'etcd_pki_ca_probe_up{{host="{os.uname().nodename}",ca="{url}"}}']
        == "0"
    )


@pytest.mark.parametrize(
    "tampered",
    [
        "",  # empty
        'etcd_pki_ca_probe_up{host="h",ca="https://elsewhere:9000"} 1\n',  # not one of its CAs
        'etcd_pki_ca_probe_up{host="h",ca="https://ca.example:9000"} 1\nnode_load1 99\n',
        'etcd_pki_ca_probe_up{host="h",ca="https://ca.example:9000"} 1 # x\n',
        'etcd_pki_ca_probe_up{host="h\\",x=\\"",ca="https://ca.example:9000"} 1\n',
    ],
)
def test_root_refuses_anything_but_the_probes_metrics(tmp_path: Path, tampered: str) -> None:
    script = tmp_path / "probe"
    script.write_text(probe_script(["https://ca.example:9000"], "/root.crt"))
    script.chmod(0o755)
    (tmp_path / "f").write_text(tampered)
    assert subprocess.run([str(script), "check", str(tmp_path / "f")]).returncode != 0
    good = 'etcd_pki_ca_probe_up{host="h",ca="https://ca.example:9000"} 1\n'
    (tmp_path / "f").write_text(good)
    assert subprocess.run([str(script), "check", str(tmp_path / "f")]).returncode == 0


def test_the_units_run_the_probe_unprivileged_and_root_only_takes_its_file() -> None:
    units = probe_units("etcd", "/opt/bin", "/var/lib/node-exporter", "45s")
    service = units["etcd-pki-ca-probe.service"].splitlines()
    assert "User=etcd" in service
    assert "ExecStart=/opt/bin/etcd-pki-ca-probe probe %t/etcd-pki-ca-probe/ca.prom" in service
    privileged = [line for line in service if line.startswith("ExecStartPost=+")]
    assert "setpriv" in privileged[0] and "/opt/bin/etcd-pki-ca-probe check " in privileged[0]
    assert privileged[1].endswith(
        "/var/lib/node-exporter/.etcd_pki_ca_probe.prom.new"
        " /var/lib/node-exporter/etcd_pki_ca_probe.prom"
    )
    assert "CapabilityBoundingSet=" in service
    assert "OnUnitActiveSec=45s" in units["etcd-pki-ca-probe.timer"].splitlines()


def test_a_probe_interval_a_probe_could_outlast_is_refused() -> None:
    with pytest.raises(
        SettingsError, match=r"`ca_probe_interval`.*5s is not longer than a probe may wait"
    ):
        validate_inventory(_inventory({"ca_probe_interval": "5s"}))
    assert validate_inventory(_inventory({"ca_probe_interval": "6s"}))


def test_the_alerts_tell_a_ca_down_from_a_host_cut_off(tmp_path: Path) -> None:
    ca = "https://etcd-k8s-1:9000"
    one = f'{{host="etcd-k8s-1",ca="{ca}"}}'
    two = f'{{host="etcd-k8s-2",ca="{ca}"}}'
    series = [
        # Minute by minute: both reach the CA for 5 minutes; then etcd-k8s-2 is cut off for
        # 5 minutes; then the CA is down for both.
        sample("etcd_pki_ca_probe_up", "1x5 1x5 0x20", one),
        sample("etcd_pki_ca_probe_up", "1x5 0x5 0x20", two),
        sample("etcd_pki_ca_probe_timestamp_seconds", "0+60x30", '{host="etcd-k8s-1"}'),
        # etcd-k8s-2's probes stop after 10 minutes.
        sample("etcd_pki_ca_probe_timestamp_seconds", "0+60x10 600x20", '{host="etcd-k8s-2"}'),
    ]
    check_rules(
        tmp_path,
        [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    firing("EtcdPkiCaUnreachableFromHost", "5m", None),
                    firing("EtcdPkiCaUnreachableFromHost", "9m", {"host": "etcd-k8s-2", "ca": ca}),
                    firing("EtcdPkiCaUnreachable", "12m", None),
                    firing("EtcdPkiCaUnreachable", "14m", {"ca": ca}),
                    # Ten minutes without a probe (the last at 10 m).
                    firing("EtcdPkiCaProbesStopped", "19m", None),
                    firing("EtcdPkiCaProbesStopped", "21m", {"host": "etcd-k8s-2"}),
                ],
            }
        ],
        Thresholds(ca_down_after="2m"),
    )
    assert [rule["alert"] for rule in probe_rules("2m", _rule)] == [
        "EtcdPkiCaUnreachable",
        "EtcdPkiCaUnreachableFromHost",
        "EtcdPkiCaProbesStopped",
    ]


def test_status_reports_what_the_probe_last_found() -> None:
    from etcd_step_pki.deploys.components.status import attention, format_text, probe_part

    ca = "https://etcd-k8s-1:9000"
    lines = [
        f'etcd_pki_ca_probe_up{{host="etcd-k8s-2",ca="{ca}"}} 0',
        'etcd_pki_ca_probe_timestamp_seconds{host="etcd-k8s-2"} 1000',
    ]
    part = probe_part(lines, "active", 1030)
    assert part == {"timer": "active", "up": {ca: False}, "seconds_since": 30}
    report = {"host": "etcd-k8s-2", "ca_probe": part, "attention": []}
    assert attention(report, True) == [f"etcd-k8s-2: does not reach the CA {ca}"]
    assert f"CA probe: {ca}=DOWN timer=active seconds-since=30" in format_text(report)
    # A probe that never ran, or whose timer stopped, needs attention too.
    never = {"host": "client-1", "ca_probe": probe_part(None, "inactive", 1030)}
    assert attention(never, True) == [
        "client-1: the CA probe's timer is inactive",
        "client-1: the CA probe has never run",
    ]
    up = {
        "host": "x",
        "ca_probe": probe_part([lines[0].replace("} 0", "} 1"), lines[1]], "active", 1030),
    }
    assert attention(up, True) == []
