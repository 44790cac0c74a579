"""Runs the real `pyinfra` command line against test hosts, the way an operator does."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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
    plan: list = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def changes(self) -> dict[str, list[str]]:
        """Per host, the names of the operations that changed something there: from the
        JSON results of a `-y --json` run, else from the progress log of the README's form."""
        changed: dict[str, list[str]] = {}
        if self.results:
            for op in self.results.get("operations", []):
                for host in op.get("success", []):
                    changed.setdefault(host, []).append(op["name"])
            return changed
        for host, operation in _progress(self.stderr, _HOST_SUCCESS):
            changed.setdefault(host, []).append(operation)
        return changed

    @property
    def would_change(self) -> dict[str, list[str]]:
        """Per host, the operations a run with change detection (no `-y`) found to change."""
        changed: dict[str, list[str]] = {}
        for op in self.plan:
            for host in op.get("hosts_with_change", []):
                changed.setdefault(host, []).append(op["name"])
        return changed

    @property
    def failed(self) -> dict[str, list[str]]:
        """Per host, the names of the operations that failed there.

        Read from the progress log: when every host fails, pyinfra stops before its results.
        """
        errors: dict[str, list[str]] = {}
        for host, operation in _progress(self.stderr, _HOST_ERROR):
            errors.setdefault(host, []).append(operation)
        return errors


_HOST_ERROR = re.compile(r"^\s+\[([^\]]+)\]\s+Error")
_HOST_SUCCESS = re.compile(r"^\s+\[([^\]]+)\]\s+Success\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# "--> Starting operation: <names>", or "Starting serial operation:" for `_serial=True`.
_STARTING = re.compile(r"^--> Starting (?:[a-z ,]+ )?operation: (.*)$")


def _progress(stderr: str, status: re.Pattern[str]) -> list[tuple[str, str]]:
    """`(host, operation)` for every progress line of pyinfra's log matching `status`."""
    found = []
    operation = None
    for line in _ANSI.sub("", stderr).splitlines():
        starting = _STARTING.match(line)
        if starting:
            operation = starting.group(1).strip()
        match = status.match(line)
        if match and operation is not None:
            found.append((match.group(1), operation))
    return found


def _parse_json(stdout: str) -> dict:
    """What `pyinfra --json` printed: `results` (per operation, hosts changed, unchanged,
    failed) and `plan` (what change detection found before the run)."""
    # The JSON is pyinfra's last line on stdout; a deploy may print before it.
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}


def run_pyinfra(
    scenario: Scenario,
    deploy: str,
    *args: str,
    inventory: str = "inventories/sandbox.py",
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
    yes: bool = False,
    pyinfra: Path = PYINFRA,
    cwd: Path = REPO,
) -> PyinfraRun:
    """`pyinfra <inventory> <deploy> [args]` from the repository root, the README's form: no
    `-y`, so pyinfra detects changes first (every operation's body runs while planning) and
    asks, and the prompt is answered. `yes=True`: `pyinfra -y --json`, no change detection.
    With `--dry` the plan comes as JSON. `pyinfra` and `cwd`: another installation's command
    and the directory it runs in (the installed package's test)."""
    if yes:
        cmd = [str(pyinfra), "-y", "--json", inventory, deploy, *args]
    elif "--dry" in args:
        cmd = [str(pyinfra), "--json", inventory, deploy, *args]
    else:
        cmd = [str(pyinfra), inventory, deploy, *args]
    run_env = {**os.environ, "PKI_SANDBOX_DIR": str(scenario.state_dir), **(env or {})}
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=run_env,
        input="\n",  # "Press enter to execute..."
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    payload = _parse_json(proc.stdout)
    run = PyinfraRun(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        payload.get("results") or {},
        payload.get("plan") or [],
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{run.output[-6000:]}")
    return run


def watch_run(
    scenario: Scenario,
    deploy: str,
    *args: str,
    on_line: Callable[[str], bool],
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> int:
    """Run a deploy in the README's form, handing every line of its log to `on_line`; when
    that returns True, pyinfra is killed (SIGKILL: a controller lost mid-run). Returns the
    exit code (negative when killed)."""
    cmd = [str(PYINFRA), "inventories/sandbox.py", deploy, *args]
    run_env = {**os.environ, "PKI_SANDBOX_DIR": str(scenario.state_dir), **(env or {})}
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=run_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write("\n")
    proc.stdin.close()
    deadline = time.monotonic() + timeout
    for line in proc.stderr:
        if on_line(_ANSI.sub("", line)) or time.monotonic() > deadline:
            proc.kill()
            break
    return proc.wait(timeout=30)


def kill_when(scenario: Scenario, deploy: str, *args: str, markers: Sequence[str]) -> bool:
    """Kill pyinfra once its log has shown each of `markers`, in that order; whether it was
    killed there (False: the run ended first)."""
    pending = list(markers)

    def seen(line: str) -> bool:
        if pending and pending[0] in line:
            pending.pop(0)
        return not pending

    watch_run(scenario, deploy, *args, on_line=seen)
    return not pending
