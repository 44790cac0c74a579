"""Upstream's step and step-ca, checked and unpacked once per module (tests/harness/local_step.py)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from tests.harness.local_step import unpacked_release


@pytest.fixture(scope="module")
def release(
    step_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> types.SimpleNamespace:
    """The archives, checked against checksums.txt and unpacked."""
    return unpacked_release(step_artifacts, tmp_path_factory.mktemp("release"))
