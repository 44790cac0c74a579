"""Shared fixtures: the test builds, the test-host scenarios, and helpers to drive them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hypothesis import settings as hypothesis_settings

from tests.harness import artifacts
from tests.harness.hosts import (
    Scenario,
    default_hosts,
    scenario_hosts,
    state_dir_for,
)
from tests.harness.s3 import BUCKET, GpgKey, boto_args, make_gpg_key, s3_server

SUBNET = "172.28.61.0/24"

# In CI the property tests draw the same examples every run: a failure there is one that a
# developer can run again, not a new draw (locally each run draws new examples).
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def step_artifacts() -> Path:
    """Upstream's step and step-ca release archives at the deploys' default versions, built
    from upstream's modules (cached): tests/hosts/upstream-release.sh. `PKI_ARTIFACTS_DIR`
    names a directory built before."""
    if os.environ.get("PKI_ARTIFACTS_DIR"):
        return Path(os.environ["PKI_ARTIFACTS_DIR"])
    return artifacts.combined(artifacts.upstream("step"), artifacts.upstream("step-ca"))


@pytest.fixture(scope="session")
def etcd_release() -> Path:
    """Upstream's etcd release archive at the deploys' default version (cached)."""
    return artifacts.upstream("etcd")


@pytest.fixture(scope="session")
def release_archives(step_artifacts: Path, etcd_release: Path) -> Path:
    """Every archive the deploys install, in one directory: the sandbox's `artifact_dir`."""
    return artifacts.combined(step_artifacts, etcd_release)


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


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """An S3-compatible server (moto) on the controller with the backup bucket."""
    with s3_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, **boto_args())
        client.create_bucket(Bucket=BUCKET)
        yield {"endpoint": endpoint}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GpgKey]:
    """GnuPG key pairs: `backup` (the recipient of CA backups) and `other`."""
    directory = tmp_path_factory.mktemp("gpg")
    return {"backup": make_gpg_key(directory, "backup"), "other": make_gpg_key(directory, "other")}
