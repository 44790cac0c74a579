"""Shared fixtures: the test-host scenarios and the helpers to drive and inspect them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.hosts import Scenario, default_hosts, scenario_hosts, state_dir_for

SUBNET = "172.28.61.0/24"


@pytest.fixture(scope="session")
def hosts() -> Iterator[Scenario]:
    """The default scenario: etcd-k8s-1..3 (1 and 2 cert-managers) and client-1."""
    project = "pki-test"
    scenario = Scenario(project, SUBNET, default_hosts(SUBNET), state_dir_for(project))
    with scenario_hosts(scenario) as started:
        yield started
