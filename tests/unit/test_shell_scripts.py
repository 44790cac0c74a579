"""Every script template, rendered with representative settings, passes shellcheck."""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.unit.scripts
from etcd_step_pki.templates import DIRECTORY

pytestmark = pytest.mark.lint


def samples() -> dict[str, Callable[[], str]]:
    """Every module's SAMPLES, merged (a template listed twice is an error)."""
    found: dict[str, Callable[[], str]] = {}
    for module in pkgutil.iter_modules(tests.unit.scripts.__path__):
        loaded = importlib.import_module(f"tests.unit.scripts.{module.name}")
        for name, render in loaded.SAMPLES.items():
            assert name not in found, f"{name}: rendered by two sample modules"
            found[name] = render
    return found


def script_templates() -> set[str]:
    """The script templates (macros are parts of scripts, checked in them)."""
    return {
        str(path.relative_to(DIRECTORY))
        for path in DIRECTORY.rglob("*.sh.j2")
        if path.parent.name != "macros"
    }


def test_every_script_template_has_a_sample() -> None:
    assert sorted(script_templates() - samples().keys()) == []
    assert sorted(samples().keys() - script_templates()) == []


@pytest.mark.parametrize("template", sorted(samples()))
def test_rendered_script_passes_shellcheck(template: str) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: tests/hosts/controller-tools.sh installs it"
    text = samples()[template]()
    checked = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", "-"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    numbered = "\n".join(f"{n:4} {line}" for n, line in enumerate(text.splitlines(), 1))
    assert checked.returncode == 0, f"{template}:\n{checked.stdout}\n{numbered}"


def test_a_failing_command_is_named_with_its_line(tmp_path: Path) -> None:
    """The strict macro: a script stops at the first failure and names it."""
    from etcd_step_pki.templates import render_text

    text = render_text(
        '{% from "macros/strict.sh.j2" import strict %}{{ strict() }}\ntrue\nfalse\necho after\n'
    )
    run = subprocess.run(
        ["bash", "-c", text, "example.sh.j2"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "after" not in run.stdout
    assert "example.sh.j2: line 4: `false` failed with exit status 1" in run.stderr
