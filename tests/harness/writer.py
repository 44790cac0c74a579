"""A client writing to etcd all along, counting the writes that failed: how tests and
benchmarks prove that an operation kept the cluster available.

A write that fails is tried once more at once, as an application would: etcd's client does not
retry a `put`, and a write in flight while leadership moves may time out. A write counts as
failed when the second attempt fails too; first attempts that failed are counted apart
(`retried`), with what they printed (`errors`), so that nothing is hidden. Writes that took
a second or more are listed with when they began and how long they took (`slow`): a stall that
ends in success is seen too."""

from __future__ import annotations

import subprocess

from tests.harness.hosts import Scenario, docker_exec


class ContinuousWriter:
    """Runs `put` (a shell command that may use `$i`, the write's number) in a loop on `host`
    from entering the block until leaving it; then `writes`, `failed`, `retried`, `errors`
    and `slow` are set."""

    def __init__(self, scenario: Scenario, host: str, put: str) -> None:
        self.scenario = scenario
        self.host = host
        self.loop = (
            "rm -f /tmp/writer-stop /tmp/writer-result /tmp/writer-errors /tmp/writer-slow;"
            " i=0; f=0; r=0; while [ ! -e /tmp/writer-stop ]; do i=$((i+1)); s=$(date +%s%N);"
            f" {{ {put} ; }} >/tmp/writer-out 2>&1; ok=$?; ms=$(( ($(date +%s%N) - s) / 1000000 ));"
            ' [ "$ms" -lt 1000 ] || echo "$i $s $ms" >> /tmp/writer-slow;'
            ' [ "$ok" -eq 0 ] || { r=$((r+1));'
            ' echo "write $i at $(date -u +%H:%M:%S.%N):" >> /tmp/writer-errors;'
            " tail -n 3 /tmp/writer-out >> /tmp/writer-errors;"
            f" {{ {put} ; }} >/dev/null 2>&1 || f=$((f+1)); }}; done;"
            " echo $i $f $r > /tmp/writer-result"
        )
        self.writes = self.failed = self.retried = 0
        self.errors = ""
        self.slow: list[tuple[int, float, int]] = []

    def __enter__(self) -> ContinuousWriter:
        container = self.scenario.container(self.host)
        self.proc = subprocess.Popen(["docker", "exec", container, "sh", "-c", self.loop])
        return self

    def __exit__(self, *exc: object) -> None:
        docker_exec(self.scenario, self.host, "touch /tmp/writer-stop")
        self.proc.wait(timeout=120)
        result = docker_exec(self.scenario, self.host, "cat /tmp/writer-result").stdout.split()
        self.writes, self.failed, self.retried = (int(x) for x in result[:3])
        if self.retried:
            self.errors = docker_exec(self.scenario, self.host, "cat /tmp/writer-errors").stdout
        slow = docker_exec(self.scenario, self.host, "cat /tmp/writer-slow 2>/dev/null || true")
        for line in slow.stdout.splitlines():
            number, began, took = line.split()
            self.slow.append((int(number), int(began) / 1e9, int(took)))
