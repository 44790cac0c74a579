"""A file the deploys install whole (a helper script), checked through the run's memo.

pyinfra's `files.put` reads the file's state and its digest itself, two round trips in every
run; read through the memo they come with the host's first read of the run (facts/prefetch.py),
and `files.put` runs only when the file is to change.
"""

from __future__ import annotations

import hashlib
from io import StringIO

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import File, Sha256File
from pyinfra.operations import files

from etcd_step_pki.facts import memo
from etcd_step_pki.operations import Commands


@operation()
def file_installed(dest: str, text: str, mode: str) -> Commands:
    """
    `dest` holds `text` and has `mode` (`files.put` puts it there when it differs).

    + dest: the file's path
    + text: what it holds
    + mode: its mode, octal digits ("0755"), as pyinfra's File fact reports them
    """
    found = memo.get_fact(host, File, path=dest)
    if (
        found
        and found["mode"] == int(mode)
        and memo.get_fact(host, Sha256File, path=dest) == hashlib.sha256(text.encode()).hexdigest()
    ):
        host.noop(f"{dest} is current")
        return
    yield from files.put._inner(src=StringIO(text), dest=dest, mode=mode)
