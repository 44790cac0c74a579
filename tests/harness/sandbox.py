"""The sandbox: Docker hosts for trying the deploys by hand.

    python -m tests.harness.sandbox up     # build, start the hosts, deploy the cluster
    python -m tests.harness.sandbox down   # remove the hosts

State (SSH key, hosts.json for inventories/sandbox.py) lives in `.sandbox/` of the checkout.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import artifacts, hosts

PROJECT = "pki-sandbox"
SUBNET = os.environ.get("PKI_SANDBOX_SUBNET", "172.28.50.0/24")
STATE = Path(os.environ.get("PKI_SANDBOX_DIR", hosts.REPO / ".sandbox"))


def _scenario(archives: Path | None = None) -> hosts.Scenario:
    extra = {"artifacts_dir": str(archives)} if archives else {}
    return hosts.Scenario(PROJECT, SUBNET, hosts.default_hosts(SUBNET), STATE, extra=extra)


def _compose(scenario: hosts.Scenario, command: str) -> None:
    subprocess.run(
        f'{hosts.compose_command()} -f "{scenario.compose_file}" -p {PROJECT} {command}',
        shell=True,
        check=True,
    )


def _pyinfra(*args: str) -> int:
    env = {**os.environ, "PKI_SANDBOX_DIR": str(STATE)}
    pyinfra = Path(sys.executable).with_name("pyinfra")
    return subprocess.run([str(pyinfra), "-y", *args], cwd=hosts.REPO, env=env).returncode


def up() -> int:
    started = time.monotonic()
    print("sandbox: building the test-host image and the release archives (cached)", flush=True)
    archives = artifacts.combined(*(artifacts.upstream(p) for p in ("step", "step-ca", "etcd")))
    scenario = _scenario(archives)
    scenario.image = hosts.build_image()
    hosts.write_scenario(scenario)
    _compose(scenario, "up -d")
    hosts.wait_ready(scenario)
    print(f"sandbox: hosts up after {time.monotonic() - started:.0f}s; deploying", flush=True)
    deploy_start = time.monotonic()
    if _pyinfra("inventories/sandbox.py", "deploys/cluster.py") != 0:
        return 1
    took = time.monotonic() - deploy_start
    _pyinfra("inventories/sandbox.py", "deploys/status.py")
    ssl = "/etc/etcd/ssl"
    print(
        f"\nsandbox: cluster deployed in {took:.0f}s. Try it from the client host:\n"
        f"  docker exec -it {scenario.container('client-1')} /opt/bin/etcdctl"
        " --endpoints=https://etcd-k8s-1:2379,https://etcd-k8s-2:2379,https://etcd-k8s-3:2379"
        f" --cacert={ssl}/root_ca.crt --cert={ssl}/client-1-client.crt"
        f" --key={ssl}/client-1-client.key member list -w table\n"
        "Run any deploy against it:\n"
        f"  PKI_SANDBOX_DIR={STATE} .venv/bin/pyinfra inventories/sandbox.py deploys/status.py\n"
        "Remove it with: make sandbox-down"
    )
    return 0


def down() -> int:
    scenario = _scenario()
    if scenario.compose_file.exists():
        _compose(scenario, "down -v --remove-orphans --timeout 5")
    hosts.remove_leftovers(PROJECT)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("up", "down"))
    return up() if parser.parse_args().action == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
