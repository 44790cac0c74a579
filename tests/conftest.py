"""Shared fixtures: the test builds, the test-host scenarios, and helpers to drive them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.hosts import (
    REPO,
    Scenario,
    default_hosts,
    scenario_hosts,
    state_dir_for,
)

SUBNET = "172.28.61.0/24"


@pytest.fixture(scope="session")
def step_artifacts() -> Path:
    """The upstream-shaped release archives of the step and step-ca test builds (cached).

    `PKI_ARTIFACTS_DIR` names a directory of archives built before, to skip the build.
    """
    if os.environ.get("PKI_ARTIFACTS_DIR"):
        return Path(os.environ["PKI_ARTIFACTS_DIR"])
    out = subprocess.run(
        ["bash", str(REPO / "tests/hosts/artifacts/build.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"building the step/step-ca test artifacts failed:\n{out.stderr}")
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def hosts() -> Iterator[Scenario]:
    """The default scenario: etcd-k8s-1..3 (1 and 2 cert-managers) and client-1."""
    project = "pki-test"
    scenario = Scenario(project, SUBNET, default_hosts(SUBNET), state_dir_for(project))
    with scenario_hosts(scenario) as started:
        yield started


def fresh_scenario(project: str, subnet: str, artifacts: Path, **kwargs) -> Scenario:
    """Bare hosts of the default layout for one test module, with the test builds."""
    return Scenario(
        project,
        subnet,
        default_hosts(subnet, **kwargs),
        state_dir_for(project),
        extra={"artifacts_dir": str(artifacts)},
    )
