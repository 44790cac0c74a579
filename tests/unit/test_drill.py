"""The drill's shell scripts are valid bash with every value quoted, and its record is read
leniently (a damaged record means: no drill succeeded yet)."""

from __future__ import annotations

import subprocess

import pytest

from etcd_step_pki.operations.drill import UNIT, _last
from tests.unit.scripts.backups import drill_from


@pytest.mark.parametrize("encryption", [None, "gpg", "kms"], ids=["replica", "s3-gpg", "s3-kms"])
def test_drill_scripts_are_valid_and_clean_up_on_exit(encryption: str | None) -> None:
    text = drill_from(encryption)
    assert subprocess.run(["bash", "-n", "-c", text], check=False).returncode == 0
    checked = subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", "-"], input=text, text=True, check=False
    )
    assert checked.returncode == 0
    assert text.index("trap cleanup EXIT") < text.index("install -d -m 0700")  # armed first
    # Every cleanup step runs, whatever the one before it returned.
    assert 'systemctl stop "$unit" 2>/dev/null || true\n' in text and 'rm -rf "$w" "$D"' in text
    assert f"unit={UNIT}\n" in text
    # The drill's step-ca listens on loopback only, on its own port.
    assert "address=127.0.0.1:9443\n" in text and '"address": "\'"$address"\'"' in text
    # The live state is named only as the replica's source, whose paths the copy rewrites.
    assert text.count("/etc/step-ca") == 1 and "live=/etc/step-ca\n" in text
    assert 'sed -i -e "s#$live/#$n/#g"' in text
    assert ('cp -a "$live" "$n"' in text) == (encryption is None)


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
