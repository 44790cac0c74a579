"""Samples every process's command line on a test host while a run goes on, so tests can
prove that no secret ever appears in process arguments (what `ps` shows)."""

from __future__ import annotations

import subprocess
from types import TracebackType

from tests.harness.hosts import Scenario, docker_exec

LOG = "/run/etcd-step-pki-ps.log"


class ProcessSampler:
    """`ps -eo args` every 20 ms on one host, from entering the block until leaving it."""

    def __init__(self, scenario: Scenario, host: str) -> None:
        self.scenario = scenario
        self.host = host
        self._proc: subprocess.Popen | None = None
        self._text = ""

    def __enter__(self) -> ProcessSampler:
        docker_exec(self.scenario, self.host, f": > {LOG}")
        self._proc = subprocess.Popen(
            ["docker", "exec", self.scenario.container(self.host), "sh", "-c",
             f"echo $$ > {LOG}.pid; while :; do ps -eo args >> {LOG}; sleep 0.02; done"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        docker_exec(self.scenario, self.host, f"kill $(cat {LOG}.pid)", check=False)
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        self._text = docker_exec(
            self.scenario, self.host, f"cat {LOG}; rm -f {LOG} {LOG}.pid"
        ).stdout

    def text(self) -> str:
        """Every command line seen, one a line."""
        return self._text
