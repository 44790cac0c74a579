"""One run at a time: a run that changes hosts holds a lock on each of them (templates/
run-lock.sh.j2), taken while the deploy is planned, before anything is read or changed.

The lock lives as long as the SSH connection of the run that took it: a run that ends, is
killed or loses its connection leaves nothing to clean up. A second run waits up to
`run_lock_wait` seconds, then refuses, naming the run that holds the lock. `--dry` and the
read-only `status.py` take none.
"""

from __future__ import annotations

import getpass
import socket
import sys
import time
import uuid

import gevent
from pyinfra import host
from pyinfra.api.exceptions import PyinfraError

from etcd_step_pki.facts import memo
from etcd_step_pki.operations.remote import Remote
from etcd_step_pki.templates.scripts import script

# Who this run is, as another run's refusal names it.
HOLDER = (
    f"{getpass.getuser()}@{socket.gethostname()} since "
    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} (run {uuid.uuid4().hex[:8]})"
)
_taken: set[tuple[int, str]] = set()


def run_lock(wait: int) -> None:
    """This run's lock on the current host, once a run; waits up to `wait` seconds for
    another run's, then refuses before anything changed."""
    key = (id(host.state), host.name)
    if key in _taken or "--dry" in sys.argv[1:]:
        return
    deadline = time.monotonic() + wait
    # Usually with the host's first facts, in one round trip (facts/memo.py).
    if memo.locked_with_reads(host, HOLDER) == "taken":
        _taken.add(key)
        return
    remote = Remote.of(host.state, host.name, "to take the run's lock")
    while True:
        ok, output = remote.run(script("run-lock.sh.j2", holder=HOLDER))
        answer = "\n".join(output.stdout_lines).strip()
        if not ok:
            raise PyinfraError(f"{host.name}: the run's lock was not taken: {output.stderr}")
        if answer == "taken":
            _taken.add(key)
            return
        if time.monotonic() >= deadline:
            raise PyinfraError(
                f"{host.name}: another run changes this host: {answer.removeprefix('held ')}; "
                f"waited {wait} s for it to end (run_lock_wait). Nothing was changed by this run"
            )
        gevent.sleep(1)
