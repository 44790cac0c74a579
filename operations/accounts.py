"""The system account a service runs as: its group and user, in one operation."""

from __future__ import annotations

from collections.abc import Generator

from pyinfra import host
from pyinfra.api import operation

from facts.accounts import SystemAccount
from operations.shell import script


@operation()
def system_account(user: str, *, home: str, shell: str = "/usr/sbin/nologin") -> Generator:
    """
    A system group and a system user of the same name, without a login or a home made.

    + user: the user and group name (e.g. `etcd`)
    + home: the user's home directory (not created)
    + shell: the user's shell

    pyinfra's `server.user` reads every account of the host first; this reads one.
    """
    found = host.get_fact(SystemAccount, account=user)
    if found["group"] is None:
        yield script("groupadd --system {user}", user=user)
    if found["user"] is None:
        yield script(
            "useradd --system --gid {user} --home-dir {home} --no-create-home --shell {shell}"
            " {user}",
            user=user,
            home=home,
            shell=shell,
        )
        return
    current = found["user"]
    fixes = []
    if (current["home"], current["shell"]) != (home, shell):
        fixes += ["--home", home, "--shell", shell]
    if found["group"] is None or current["group_id"] != found["group"]["gid"]:
        fixes += ["--gid", user]
    if fixes:
        yield script("usermod {fixes} {user}", fixes=fixes, user=user)
    elif found["group"] is not None:
        host.noop(f"system user and group {user} exist")
