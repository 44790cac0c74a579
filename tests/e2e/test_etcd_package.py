"""etcd from the distribution's package instead of a release archive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.hosts import Scenario, TestHost, docker_exec, scenario_hosts, state_dir_for
from tests.harness.pyinfra_run import run_pyinfra

pytestmark = pytest.mark.e2e

PACKAGE = ["--data", "etcd_install_from=package"]


@pytest.fixture(scope="module")
def package_hosts(release_archives: Path) -> Iterator[Scenario]:
    project = "pki-test-etcd-package"
    scenario = Scenario(
        project,
        "172.28.67.0/24",
        [TestHost("etcd-k8s-1", "172.28.67.11", ("etcd", "etcd_cert_managers"))],
        state_dir_for(project),
        extra={"artifacts_dir": str(release_archives)},
    )
    with scenario_hosts(scenario) as started:
        yield started


def test_a_member_runs_debians_etcd(package_hosts: Scenario) -> None:
    run_pyinfra(package_hosts, "deploys/cluster.py", *PACKAGE)
    host = "etcd-k8s-1"
    version = docker_exec(package_hosts, host, "dpkg-query -W -f '${Version}' etcd-server").stdout
    assert version
    unit = docker_exec(package_hosts, host, "systemctl cat etcd-k8s-1.service").stdout
    assert "EnvironmentFile=/etc/etcd/etcd-k8s-1.env" in unit
    assert "ExecStart=/usr/bin/etcd\n" in unit
    assert docker_exec(package_hosts, host, "test -e /opt/bin/etcd", check=False).returncode
    # The package's own default member stays off; ours is the one answering, over mTLS.
    state = docker_exec(package_hosts, host, "systemctl is-active etcd.service", check=False)
    assert state.stdout.strip() == "inactive"
    ssl = "/etc/etcd/ssl"
    health = docker_exec(
        package_hosts,
        host,
        f"/usr/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert={ssl}/root_ca.crt "
        f"--cert={ssl}/{host}-client.crt --key={ssl}/{host}-client.key endpoint health",
    )
    assert "is healthy" in health.stdout + health.stderr
    assert run_pyinfra(package_hosts, "deploys/cluster.py", *PACKAGE).changes == {}
