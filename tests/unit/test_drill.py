"""The drill's shell scripts are valid sh with every value quoted, and its record is read
leniently (a damaged record means: no drill succeeded yet)."""

from __future__ import annotations

import subprocess

import pytest

from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations.ca_backup import WORK, unpack_script
from etcd_step_pki.operations.drill import _FROM_BACKUP, _FROM_REPLICA, DRILL_DIR, UNIT, _last

VALUES = {
    "work": WORK,
    "dir": DRILL_DIR,
    "unit": UNIT,
    "ca_path": "/etc/step-ca",
    "port": 9443,
    "step": "/opt/bin/step",
    "step_ca": "/opt/bin/step-ca",
    "provisioner": "etcd-pki",
    "live_root": "/etc/etcd/ssl/root_ca.crt",
    "live_crt": "/etc/etcd/ssl/etcd-k8s-2-peer.crt",
    "live_key": "/etc/etcd/ssl/etcd-k8s-2-peer.key",
    "expect_root": "ab" * 32,
}


@pytest.mark.parametrize(
    "template",
    [_FROM_REPLICA, unpack_script(_FROM_BACKUP, "gpg"), unpack_script(_FROM_BACKUP, "kms")],
    ids=["replica", "s3-gpg", "s3-kms"],
)
def test_drill_scripts_are_valid_sh_and_clean_up_on_exit(template: str) -> None:
    text = script(template, **VALUES).get_raw_value()
    assert subprocess.run(["sh", "-n", "-c", text], check=False).returncode == 0
    assert text.index("trap '") < text.index("install -d -m 0700")  # cleanup armed first
    # Every cleanup step runs, whatever the one before it returned (set -e holds in traps).
    assert f"systemctl stop {UNIT} 2>/dev/null || true;" in text and 'rm -rf "$w" "$D"' in text
    # The drill's step-ca listens on loopback only, on its own port.
    assert '"address": "127.0.0.1:9443"' in text
    # The live state is named only as the replica's source and in the copy's rewritten paths.
    rest = text.replace('cp -a /etc/step-ca "$n"', "").replace("s#/etc/step-ca/#", "")
    assert "/etc/step-ca" not in rest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, {}),
        ("", {}),
        ("not json", {}),
        ("[1, 2]", {}),
        ('{"finished": 5.0, "source": "replica"}', {"finished": 5.0, "source": "replica"}),
    ],
)
def test_last_drill_record(text: str | None, expected: dict[str, object]) -> None:
    assert _last(text) == expected
