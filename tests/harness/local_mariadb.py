"""A MariaDB server of Debian's packages run directly on this machine for a test: its own data
directory, reached on a unix socket only, its `root` account authenticated by the socket's
peer (unix_socket: no password anywhere). tests/hosts/controller-tools.sh installs it."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.harness.local_step import started, stopped


def _program(name: str) -> str:
    """Where Debian put one of MariaDB's programs (the server in /usr/sbin, off some PATHs)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin") or name


def query(socket: pathlib.Path, sql: str) -> list[list[str]]:
    """The rows `sql` gives, each a list of columns (tab-separated, no header)."""
    done = subprocess.run(
        [_program("mariadb"), f"--socket={socket}", "--batch", "--skip-column-names", "-e", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{sql!r} failed: {done.stderr}")
    return [line.split("\t") for line in done.stdout.splitlines()]


@contextmanager
def mariadb_server(base: pathlib.Path) -> Iterator[pathlib.Path]:
    """A MariaDB server with its data in `base` until the block ends; gives its socket."""
    data, socket, log = base / "data", base / "mysqld.sock", base / "mysqld.err"
    subprocess.run(
        [_program("mariadb-install-db"), "--no-defaults", f"--datadir={data}", "--user=root",
         "--auth-root-authentication-method=socket", "--skip-test-db"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [_program("mariadbd"), "--no-defaults", f"--datadir={data}", f"--socket={socket}",
         "--skip-networking", "--user=root", f"--pid-file={base / 'mysqld.pid'}",
         f"--log-error={log}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        started(server, socket.exists, 60, log)
        yield socket
    finally:
        stopped(server, 30)
