"""README's settings reference is the one generated from the settings' declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcd_step_pki.deploys.settings import DEFAULTS, RunOptions
from etcd_step_pki.deploys.settings.model import HostSettings
from etcd_step_pki.deploys.settings.reference import COMMAND, current, render, rewritten

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_reference_is_current() -> None:
    assert current(README.read_text(encoding="utf-8")) == render(), (
        f"README.md's settings reference is not current: run {COMMAND}"
    )


def test_every_setting_is_documented_once() -> None:
    reference = render()
    for name, field in HostSettings.model_fields.items():
        assert field.description, f"{name} has no documentation"
        assert reference.count(f"| `{name}` |") == 1, name


def test_defaults_and_per_run_settings_come_from_the_declarations() -> None:
    fields = HostSettings.model_fields
    assert {n: f.default for n, f in fields.items() if n in DEFAULTS} == DEFAULTS
    assert set(fields) - set(DEFAULTS) <= set(RunOptions.model_fields)
    assert "ca_active" in DEFAULTS and "renew_before" not in DEFAULTS


def test_regenerating_replaces_only_the_reference() -> None:
    text = README.read_text(encoding="utf-8")
    stale = text.replace(current(text), current(text).replace("| `bin_dir` |", "| `bin` |"))
    assert rewritten(stale) == text
    with pytest.raises(ValueError, match="no settings reference"):
        rewritten("# no reference here\n")
