"""Upstream's step and step-ca run directly on this machine (tests/artifacts): the checked,
unpacked release, and a step-ca served on 127.0.0.1 for as long as a test needs it."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import socket
import subprocess
import tarfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.harness.artifacts import VERSIONS

STEP_TGZ = f"step_linux_{VERSIONS['step']}_amd64.tar.gz"
CA_TGZ = f"step-ca_linux_{VERSIONS['step-ca']}_amd64.tar.gz"


def clean_env(**extra: str) -> dict[str, str]:
    """The process environment without STEP_* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEP")}
    env.update(extra)
    return env


def run(cmd: list[Any], env: dict[str, str], check: bool = True, timeout: int = 60,
        input: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    proc = subprocess.run(
        [str(c) for c in cmd],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **({"input": input} if input is not None else {"stdin": subprocess.DEVNULL}),
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{cmd} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def step(release: Any, env: dict[str, str], *args: Any, check: bool = True,
         input: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the unpacked step binary."""
    return run([release.step, *args], env, check=check, input=input)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unpacked_release(archives: pathlib.Path, root: pathlib.Path) -> types.SimpleNamespace:
    """The step and step-ca archives, checked against checksums.txt and unpacked in `root`."""
    sums = {}
    for line in (archives / "checksums.txt").read_text().splitlines():
        digest, name = line.split("  ", 1)  # sha256sum / goreleaser format
        sums[name] = digest
    assert set(sums) == {STEP_TGZ, CA_TGZ}
    for name, digest in sums.items():
        assert hashlib.sha256((archives / name).read_bytes()).hexdigest() == digest, name
    members = {}
    for name in sums:
        with tarfile.open(archives / name) as tar:
            members[name] = sorted(m.name for m in tar.getmembers() if not m.isdir())
            tar.extractall(root, filter="data")
    return types.SimpleNamespace(
        dir=archives,
        members=members,
        step=root / f"step_{VERSIONS['step']}" / "bin" / "step",
        step_ca=root / "step-ca",
    )


def initialised_ca(release: Any, base: pathlib.Path, provisioner: str) -> types.SimpleNamespace:
    """A CA made by `step ca init` in `base`, patched to bbolt: not yet served."""
    port = free_port()
    pw, ppw = base / "password", base / "provisioner-password"
    pw.write_text("ca-password\n")
    ppw.write_text("provisioner-password\n")
    steppath = base / "ca"
    env = clean_env(STEPPATH=str(steppath), HOME=str(base))
    step(
        release, env, "ca", "init", "--deployment-type", "standalone", "--name", "Test CA",
        "--dns", "localhost", "--dns", "127.0.0.1", "--address", f"127.0.0.1:{port}",
        "--provisioner", provisioner, "--password-file", pw, "--provisioner-password-file", ppw,
    )  # fmt: skip
    config = steppath / "config" / "ca.json"
    original = json.loads(config.read_text())
    bbolt = {"type": "bbolt", "dataSource": str(steppath / "db" / "bbolt.db")}
    config.write_text(json.dumps(dict(original, db=bbolt), indent=2))
    return types.SimpleNamespace(
        base=base,
        steppath=steppath,
        env=env,
        url=f"https://127.0.0.1:{port}",
        port=port,
        pw=pw,
        ppw=ppw,
        config=config,
        original_config=original,
        root=steppath / "certs" / "root_ca.crt",
        intermediate=steppath / "certs" / "intermediate_ca.crt",
    )


@contextmanager
def serving(release: Any, ca: types.SimpleNamespace) -> Iterator[subprocess.CompletedProcess[str]]:
    """step-ca serving `ca` until the block ends; gives the first health check that passed."""
    log_path = ca.base / "step-ca.log"
    with log_path.open("a") as log:
        # Flags after the configuration path, as in the documented invocation.
        proc = subprocess.Popen(
            [str(release.step_ca), str(ca.config), "--password-file", str(ca.pw)],
            env=ca.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        health: list[subprocess.CompletedProcess[str]] = []

        def answers() -> bool:
            health[:] = [step(release, ca.env, "ca", "health", "--ca-url", ca.url, check=False)]
            return health[0].returncode == 0

        started(proc, answers, 30, log_path)
        yield health[0]
    finally:
        stopped(proc, 10)


def started(
    proc: subprocess.Popen[Any], ready: Callable[[], bool], timeout: float, log: pathlib.Path
) -> None:
    """Wait until `ready()`; AssertionError with the log when `proc` ends or time runs out."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{proc.args[0]} did not start:\n{log.read_text()}")
        time.sleep(0.1)


def stopped(proc: subprocess.Popen[Any], timeout: float) -> None:
    """`proc` ended: asked to, then killed after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def token(release: Any, ca: types.SimpleNamespace, provisioner: str, subject: str,
          *sans: str) -> str:  # fmt: skip
    """A one-time token of `provisioner` for `subject` and `sans`, minted at `ca`."""
    flags = [x for san in sans for x in ("--san", san)]
    return step(
        release, ca.env, "ca", "token", subject, *flags, "--provisioner", provisioner,
        "--provisioner-password-file", ca.ppw, "--ca-url", ca.url, "--root", ca.root,
    ).stdout.strip()  # fmt: skip


def certificate(release: Any, ca: types.SimpleNamespace, subject: str, one_time: str,
                crt: pathlib.Path) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`step ca certificate` at `ca` with the token `one_time`: the key beside `crt`."""
    return step(
        release, ca.env, "ca", "certificate", subject, crt, crt.with_suffix(".key"),
        "--token", one_time, "--ca-url", ca.url, "--root", ca.root, "--force", check=False,
    )  # fmt: skip
