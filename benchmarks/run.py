"""Benchmarks on the sandbox hosts; writes benchmarks/RESULTS.md and benchmarks/results.png.

    make bench        (or: .venv/bin/python -m benchmarks.run)

Each figure is given with its ratio to the floor measured in the same run: a pyinfra run that
does nothing but connect (`pyinfra ... exec -- true`) on the same hosts. Not a test: it
reports what it measures, targets included, met or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import ipaddress
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import boto3

from benchmarks.report import CLIENT_COUNTS, OUT, RESTARTS, write_results
from tests.harness import artifacts
from tests.harness.hosts import (
    REPO,
    Scenario,
    TestHost,
    default_hosts,
    docker_exec,
    scenario_hosts,
    set_inventory,
    state_dir_for,
)
from tests.harness.pyinfra_run import PYINFRA
from tests.harness.pyinfra_run import run_pyinfra as _run_pyinfra
from tests.harness.s3 import CREDENTIALS, make_gpg_key, s3_server
from tests.harness.writer import ContinuousWriter

SSL = "/etc/etcd/ssl"

# Timings of execution, as a scheduled job runs them: `-y`, no change detection first.
run_pyinfra = partial(_run_pyinfra, yes=True)


def timed(action) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def floor(scenario: Scenario) -> float:
    """Median wall time of a run that only connects and runs `true` on every host."""
    env = {**os.environ, "PKI_SANDBOX_DIR": str(scenario.state_dir)}
    cmd = [str(PYINFRA), "-y", "inventories/sandbox.py", "exec", "--", "true"]
    runs = [
        timed(lambda: subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, check=True))
        for _ in range(3)
    ]
    return statistics.median(runs)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def archive_mirror(archives: Path) -> Iterator[None]:
    """Serve the release archives over HTTP, as an operator's mirror would, and have every
    scenario's hosts download them (PKI_ARTIFACT_MIRROR_URL, read by the sandbox settings)
    rather than receive them from the controller."""
    handler = partial(_QuietHandler, directory=str(archives))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    global _MIRROR_PORT
    _MIRROR_PORT = server.server_address[1]
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


_MIRROR_PORT = 0


def _scenario(name: str, subnet: str, archives: Path, clients: int = 1) -> Scenario:
    project = f"pki-bench-{name}"
    gateway = next(ipaddress.ip_network(subnet).hosts())
    os.environ["PKI_ARTIFACT_MIRROR_URL"] = f"http://{gateway}:{_MIRROR_PORT}/"
    return Scenario(
        project,
        subnet,
        default_hosts(subnet, clients=clients),
        state_dir_for(project),
        extra={"artifacts_dir": str(archives)},
    )


def Writer(scenario: Scenario) -> ContinuousWriter:
    endpoints = ",".join(f"https://etcd-k8s-{i}:2379" for i in (1, 2, 3))
    put = (
        f"/opt/bin/etcdctl --endpoints={endpoints} --cacert={SSL}/root_ca.crt "
        f"--cert={SSL}/client-1-client.crt --key={SSL}/client-1-client.key put /bench/$i $i"
    )
    return ContinuousWriter(scenario, "client-1", put)


def main_cluster(archives: Path, results: dict) -> None:
    scenario = _scenario("main", "172.28.71.0/24", archives)
    scenario.hosts.append(TestHost("etcd-k8s-4", "172.28.71.14", ("etcd",)))
    base = ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"]
    with scenario_hosts(scenario) as hosts, s3_server() as endpoint:
        set_inventory(hosts, base)
        floors = [floor(hosts)]
        results["create"] = timed(lambda: run_pyinfra(hosts, "deploys/cluster.py"))
        # The floor varies by a third between minutes on this machine: measured between the
        # re-runs, and each figure set against the median of all of them.
        reruns = []
        for _ in range(5):
            start = time.monotonic()
            run = run_pyinfra(hosts, "deploys/cluster.py")
            reruns.append(time.monotonic() - start)
            assert run.changes == {}, run.changes
            floors.append(floor(hosts))
        results["floor"] = statistics.median(floors)
        results["floors"] = [round(f, 2) for f in floors]
        results["rerun"] = statistics.median(reruns)

        set_inventory(hosts, [*base, "etcd-k8s-4"])
        results["floor_5"] = floor(hosts)
        results["add_member"] = timed(
            lambda: run_pyinfra(hosts, "deploys/cluster.py", "--limit", "etcd-k8s-4")
        )
        run_pyinfra(hosts, "deploys/remove_node.py", "--data", "etcd_remove_node=etcd-k8s-4")
        set_inventory(hosts, base)

        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with Writer(hosts) as writer:
            results["renew_all"] = timed(
                lambda: run_pyinfra(hosts, "deploys/renew.py", "--data", f"renew_before={now}")
            )
        results["renew_writes"], results["renew_failed"] = writer.writes, writer.failed
        results["renew_errors"] = writer.errors[-2000:]
        results["renew_retried"] = writer.retried
        with Writer(hosts) as writer:
            results["rolling_restart"] = timed(
                lambda: run_pyinfra(
                    hosts, "deploys/cluster.py", "--data", "etcd_tls_min_version=TLS1.3"
                )
            )
        results["rolling_writes"], results["rolling_failed"] = writer.writes, writer.failed
        results["rolling_errors"] = writer.errors[-2000:]
        results["rolling_retried"] = writer.retried

        keys = make_gpg_key(state_dir_for("pki-bench-keys") / str(os.getpid()), "bench")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                     ).create_bucket(Bucket="bench")  # fmt: skip
        s3 = ["--data", "ca_backup_bucket=bench", "--data", f"ca_backup_endpoint_url={endpoint}"]
        run_pyinfra(
            hosts,
            "deploys/backup_ca.py",
            *s3,
            "--data",
            f"ca_backup_recipient_key={keys.public}",
            env=CREDENTIALS,
        )
        docker_exec(hosts, "etcd-k8s-1", "systemctl stop step-ca && rm -rf /etc/step-ca")
        results["restore"] = timed(
            lambda: run_pyinfra(
                hosts,
                "deploys/restore_ca.py",
                *s3,
                "--data",
                "ca_restore_from=s3",
                "--data",
                f"ca_restore_private_key={keys.private}",
                env=CREDENTIALS,
            )
        )
        run_pyinfra(hosts, "deploys/replicate_ca.py")
        subprocess.run(["docker", "stop", hosts.container("etcd-k8s-1")], capture_output=True,
                       check=True)  # fmt: skip
        results["failover"] = timed(
            lambda: run_pyinfra(
                hosts,
                "deploys/failover.py",
                "--data",
                "ca_active=etcd-k8s-2",
                "--exclude",
                "etcd-k8s-1",
            )
        )


STALLS = OUT / "stalls"


def restart_series(archives: Path, results: dict, count: int = RESTARTS) -> None:
    """`count` rolling restarts of 3 members (a configuration change each), a client writing
    all along: for each, its time, its writes, the first attempts that failed and the writes
    that took a second or more. Around any such write, every member's etcd log is kept in
    benchmarks/stalls/ (not committed) to read what etcd did then."""
    scenario = _scenario("restarts", "172.28.76.0/24", archives)
    runs: list[dict] = []
    with scenario_hosts(scenario) as hosts:
        set_inventory(hosts, ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"])
        run_pyinfra(hosts, "deploys/cluster.py")
        for index in range(count):
            change = ["--data", f"etcd_compaction_retention={index % 2 + 2}h"]
            began = time.time()
            with Writer(hosts) as writer:
                seconds = timed(lambda c=change: run_pyinfra(hosts, "deploys/cluster.py", *c))
            run = {"seconds": round(seconds, 2), "writes": writer.writes,
                   "failed": writer.failed, "retried": writer.retried,
                   "slow": [(round(at - began, 2), took) for _, at, took in writer.slow],
                   "errors": writer.errors[-1500:]}  # fmt: skip
            runs.append(run)
            if writer.retried or writer.slow:
                _keep_logs(hosts, index, began, time.time())
    results["restarts"] = runs


def _keep_logs(scenario: Scenario, index: int, began: float, ended: float) -> None:
    STALLS.mkdir(exist_ok=True)
    for n in (1, 2, 3):
        host = f"etcd-k8s-{n}"
        log = docker_exec(
            scenario,
            host,
            f"journalctl -u etcd-k8s-{n}.service -o short-precise --no-pager"
            f" --since @{int(began) - 1} --until @{int(ended) + 1}",
            check=False,
        ).stdout
        (STALLS / f"restart-{index:02d}-{host}.log").write_text(log)


def _container_cpu_seconds(scenario: Scenario) -> float:
    """CPU time the scenario's containers have used so far (cgroup v1 or v2), in seconds."""
    total = 0.0
    for test_host in scenario.hosts:
        cid = subprocess.run(
            ["docker", "inspect", "-f", "{{.Id}}", scenario.container(test_host.name)],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat")
        if v1.exists():
            total += int(v1.read_text()) / 1e9
        elif v2.exists():
            usage = dict(line.split() for line in v2.read_text().splitlines())
            total += int(usage["usage_usec"]) / 1e6
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def issuance(archives: Path, results: dict) -> None:
    """certs.py on bare hosts with the CA running: wall time, and the CPU time the hosts and
    the controller spent, which bounds the wall time from below on this machine's cores."""
    for index, count in enumerate(CLIENT_COUNTS):
        scenario = _scenario(f"n{count}", f"172.28.{72 + index}.0/24", archives, clients=count)
        try:
            with scenario_hosts(scenario) as hosts:
                results[f"floor_n{count}"] = floor(hosts)
                run_pyinfra(hosts, "deploys/ca.py")
                hosts_cpu, controller_cpu = _container_cpu_seconds(hosts), _children_cpu_seconds()
                results[f"issue_n{count}"] = timed(
                    lambda h=hosts: run_pyinfra(h, "deploys/certs.py")
                )
                results[f"issue_n{count}_hosts_cpu"] = _container_cpu_seconds(hosts) - hosts_cpu
                results[f"issue_n{count}_controller_cpu"] = _children_cpu_seconds() - controller_cpu
        except (RuntimeError, AssertionError) as error:
            results.setdefault("errors", []).append(f"{count} clients: {str(error)[:300]}")


def main() -> int:
    # Python as an operator's controller runs it, keeping the package's bytecode: a machine
    # that disables that in its environment would time the package's compilation every run.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    archives = artifacts.combined(*(artifacts.upstream(p) for p in ("step", "step-ca", "etcd")))
    results: dict = {}
    with archive_mirror(archives):
        try:
            main_cluster(archives, results)
        except (RuntimeError, AssertionError) as error:
            results.setdefault("errors", []).append(f"cluster figures: {str(error)[:300]}")
        issuance(archives, results)
        try:
            restart_series(archives, results)
        except (RuntimeError, AssertionError) as error:
            results.setdefault("errors", []).append(f"restart series: {str(error)[:300]}")
    write_results(results)
    print((OUT / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
