"""The harness itself: pyinfra over SSH converges all four hosts, idempotently."""

import subprocess

import pytest

from tests.harness.hosts import Scenario, TestHost, docker_exec, scenario_hosts, state_dir_for
from tests.harness.pyinfra_run import run_pyinfra

pytestmark = pytest.mark.e2e

DEPLOY = "tests/e2e/deploys/harness_check.py"


def test_pyinfra_converges_every_host_once(hosts: Scenario) -> None:
    first = run_pyinfra(hosts, DEPLOY)
    assert set(first.changes) == {h.name for h in hosts.hosts}
    for host in hosts.hosts:
        marker = docker_exec(hosts, host.name, "stat -c '%a %U' /var/lib/pki-harness/marker")
        assert marker.stdout.split() == ["640", "root"]
        content = docker_exec(hosts, host.name, "cat /var/lib/pki-harness/marker").stdout
        assert content == f"host={host.name}\n"

    second = run_pyinfra(hosts, DEPLOY)
    assert second.changes == {}
    assert not second.failed


def test_hosts_reach_each_other_by_name(hosts: Scenario) -> None:
    for host in hosts.hosts:
        for other in hosts.hosts:
            for name in (other.name, other.fqdn):
                out = docker_exec(hosts, host.name, f"getent hosts {name}").stdout.split()
                assert out[0] == other.address, (host.name, name, out)
        others = " ".join(o.name for o in hosts.hosts if o != host)
        docker_exec(hosts, host.name, f"for h in {others}; do ping -c1 -W2 $h >/dev/null; done")


def test_hosts_run_systemd_and_key_only_ssh(hosts: Scenario) -> None:
    for host in hosts.hosts:
        assert docker_exec(hosts, host.name, "ps -o comm= -p 1").stdout.strip() == "systemd"
        sshd = docker_exec(hosts, host.name, "sshd -T").stdout.lower().splitlines()
        assert "permitrootlogin without-password" in sshd
        assert "passwordauthentication no" in sshd
        assert docker_exec(hosts, host.name, "hostname -f").stdout.strip() == host.fqdn


def _labelled(kind: str, project: str) -> list[str]:
    flag = "-aq" if kind == "container" else "-q"
    return subprocess.run(
        ["docker", kind, "ls", flag, "--filter", f"label=etcd-step-pki.project={project}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip


def test_hosts_are_removed_after_a_failure(hosts: Scenario) -> None:
    project = "pki-test-teardown"
    subnet = "172.28.63.0/24"
    scenario = Scenario(
        project,
        subnet,
        [TestHost("lonely-1", "172.28.63.11", ("etcd",))],
        state_dir_for(project),
        image=hosts.image,
    )
    with pytest.raises(RuntimeError, match="boom"), scenario_hosts(scenario):
        assert _labelled("container", project)
        raise RuntimeError("boom")
    assert _labelled("container", project) == []
    assert _labelled("network", project) == []
