"""Templates compiled once, kept in the controller's cache for the next run: one directory per
Jinja environment, checked against the source, and a cache that cannot be written is only
not used."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcd_step_pki import templates


def test_a_second_run_loads_what_the_first_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = templates._environment("scripts")
    text = first.get_template("facts/batch.sh.j2").render(
        mark="m", commands=["true"], machine="", holder=None
    )
    kept = list((tmp_path / "etcd-step-pki" / "templates" / "scripts").iterdir())
    assert kept and all(path.stat().st_size > 0 for path in kept)
    second = templates._environment("scripts")
    compiled: list[str] = []
    monkeypatch.setattr(second, "compile", lambda *a, **k: compiled.append("x"))
    again = second.get_template("facts/batch.sh.j2").render(
        mark="m", commands=["true"], machine="", holder=None
    )
    assert again == text and compiled == []
    # The other environment (its code differs: `finalize`) keeps its own.
    templates._environment("line-files", finalize=templates.one_line)
    assert (tmp_path / "etcd-step-pki" / "templates" / "line-files").is_dir()


def test_a_cache_that_cannot_be_written_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etcd-step-pki").write_text("a file where the directory would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    environment = templates._environment("scripts")
    assert (
        environment.get_template("facts/batch.sh.j2")
        .render(mark="m", commands=["true"], machine="", holder=None)
        .startswith("#")
    )
