"""Runs the real `pyinfra` command line against test hosts, the way an operator does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.hosts import REPO, Scenario

PYINFRA = Path(sys.executable).with_name("pyinfra")


@dataclass
class PyinfraRun:
    """What a pyinfra run did: its exit code, everything it printed, and what changed where."""

    returncode: int
    stdout: str
    stderr: str
    results: dict = field(default_factory=dict)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changes(self) -> dict[str, list[str]]:
        """Per host, the names of the operations that changed something there."""
        changed: dict[str, list[str]] = {}
        for op in self.results.get("operations", []):
            for host in op.get("success", []):
                changed.setdefault(host, []).append(op["name"])
        return changed

    @property
    def failed(self) -> dict[str, list[str]]:
        """Per host, the names of the operations that failed there.

        Read from the progress log: when every host fails, pyinfra stops before its results.
        """
        errors: dict[str, list[str]] = {}
        operation = None
        for line in self.stderr.splitlines():
            if line.startswith("--> Starting operation: "):
                operation = line.removeprefix("--> Starting operation: ").strip()
            match = _HOST_ERROR.match(line)
            if match and operation is not None:
                errors.setdefault(match.group(1), []).append(operation)
        return errors


_HOST_ERROR = re.compile(r"^\s+\[([^\]]+)\]\s+Error")


def _parse_results(stdout: str) -> dict:
    """The `results` part of `pyinfra --json`: per operation, hosts changed, unchanged, failed."""
    # The JSON is pyinfra's last line on stdout; a deploy may print before it.
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        payload = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return payload.get("results") or {}


def run_pyinfra(
    scenario: Scenario,
    deploy: str,
    *args: str,
    inventory: str = "inventories/sandbox.py",
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> PyinfraRun:
    """`pyinfra -y --json <inventory> <deploy> [args]` from the repository root."""
    cmd = [str(PYINFRA), "-y", "--json", inventory, deploy, *args]
    run_env = {**os.environ, "PKI_SANDBOX_DIR": str(scenario.state_dir), **(env or {})}
    proc = subprocess.run(
        cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    run = PyinfraRun(proc.returncode, proc.stdout, proc.stderr, _parse_results(proc.stdout))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{run.output[-6000:]}")
    return run
