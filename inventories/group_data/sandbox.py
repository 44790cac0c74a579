"""Settings of the Docker sandbox (pyinfra puts every host of inventories/sandbox.py in the
group `sandbox`).

The sandbox installs upstream's step, step-ca and etcd at the deploys' default versions,
built by the harness from upstream's modules (tests/hosts/upstream-release.sh) and uploaded
from the controller as an air-gapped site would: `artifact_dir` is where the harness keeps
them (`$PKI_ARTIFACTS_DIR`, or the directory recorded in the sandbox's hosts.json), and the
checksums are read from that directory's checksums.txt (a build's archive has other bytes
than upstream's, so not the pinned sums). With `$PKI_ARTIFACT_MIRROR_URL` set
(an HTTP server holding the same directory, as the benchmarks run one), every host downloads
the archives itself instead, as it does from upstream by default.
"""

import json
import os
import re
from pathlib import Path

__all__ = [
    "artifact_dir",
    "artifact_mirror_url",
    "artifact_source",
    "ca_galera_arbitrator",
    "ca_ha",
    "ca_probe_interval",
    "etcd_checksums",
    "etcd_clusters",
    "etcd_metrics_port",
    "metrics_textfile_dir",
    "step_ca_checksums",
    "step_ca_name",
    "step_ca_root_record",
    "step_checksums",
]

_state_dir = Path(
    os.environ.get("PKI_SANDBOX_DIR", Path(__file__).resolve().parents[2] / ".sandbox")
)
_state_file = _state_dir / "hosts.json"
_state = json.loads(_state_file.read_text()) if _state_file.exists() else {}
_artifacts = os.environ.get("PKI_ARTIFACTS_DIR") or _state.get("artifacts_dir") or ""


_PATTERNS = {
    "step": re.compile(r"^step_linux_(\d+\.\d+\.\d+)_(amd64|arm64)\.tar\.gz$"),
    "step-ca": re.compile(r"^step-ca_linux_(\d+\.\d+\.\d+)_(amd64|arm64)\.tar\.gz$"),
    "etcd": re.compile(r"^etcd-v(\d+\.\d+\.\d+)-linux-(amd64|arm64)\.tar\.gz$"),
}


def _checksums(binary: str) -> dict[str, dict[str, str]]:
    """`{version: {arch: sha256}}` of every archive of `binary` in checksums.txt."""
    sums = Path(_artifacts, "checksums.txt")
    found: dict[str, dict[str, str]] = {}
    for line in sums.read_text().splitlines() if sums.exists() else []:
        digest, _, name = line.partition("  ")
        match = _PATTERNS[binary].match(name.strip())
        if match:
            found.setdefault(match.group(1), {})[match.group(2)] = digest
    return found


artifact_mirror_url = os.environ.get("PKI_ARTIFACT_MIRROR_URL") or None
artifact_source = "mirror" if artifact_mirror_url else "local"
artifact_dir = _artifacts
# The root the first run finds is recorded with the sandbox's state, not beside the inventory
# (every sandbox and test scenario shares inventories/sandbox.py).
step_ca_root_record = str(_state_dir / "root-sha256")
step_checksums = _checksums("step")
step_ca_checksums = _checksums("step-ca")
step_ca_name = "etcd-k8s sandbox CA"
# Several clusters on the sandbox's CA when the scenario names them (tests/e2e/test_multicluster).
etcd_clusters = _state.get("etcd_clusters")
etcd_checksums = _checksums("etcd")
# Metrics and alerting when the scenario asks for them (tests/e2e/test_monitoring).
metrics_textfile_dir = _state.get("metrics_textfile_dir")
ca_probe_interval = _state.get("ca_probe_interval", "30s")
etcd_metrics_port = _state.get("etcd_metrics_port")
# step-ca active on both cert-managers when the scenario asks (tests/e2e/test_active_active).
ca_ha = _state.get("ca_ha", "standby")
ca_galera_arbitrator = _state.get("ca_galera_arbitrator")
