"""A client writing to etcd all along, counting the writes that failed: how tests and
benchmarks prove that an operation kept the cluster available."""

from __future__ import annotations

import subprocess

from tests.harness.hosts import Scenario, docker_exec


class ContinuousWriter:
    """Runs `put` (a shell command that may use `$i`, the write's number) in a loop on `host`
    from entering the block until leaving it; then `writes`, `failed` and `errors` (what the
    failed writes printed, so that a failure says why) are set."""

    def __init__(self, scenario: Scenario, host: str, put: str) -> None:
        self.scenario = scenario
        self.host = host
        self.loop = (
            "rm -f /tmp/writer-stop /tmp/writer-result /tmp/writer-errors; i=0; f=0;"
            " while [ ! -e /tmp/writer-stop ]; do i=$((i+1));"
            f" {{ {put} ; }} >/tmp/writer-out 2>&1 || {{ f=$((f+1));"
            ' echo "write $i at $(date -u +%H:%M:%S.%N):" >> /tmp/writer-errors;'
            " tail -n 3 /tmp/writer-out >> /tmp/writer-errors; }; done;"
            " echo $i $f > /tmp/writer-result"
        )
        self.writes = self.failed = 0
        self.errors = ""

    def __enter__(self) -> ContinuousWriter:
        container = self.scenario.container(self.host)
        self.proc = subprocess.Popen(["docker", "exec", container, "sh", "-c", self.loop])
        return self

    def __exit__(self, *exc: object) -> None:
        docker_exec(self.scenario, self.host, "touch /tmp/writer-stop")
        self.proc.wait(timeout=120)
        result = docker_exec(self.scenario, self.host, "cat /tmp/writer-result").stdout.split()
        self.writes, self.failed = int(result[0]), int(result[1])
        if self.failed:
            self.errors = docker_exec(self.scenario, self.host, "cat /tmp/writer-errors").stdout
