"""The system account a service runs as: its group and user, in one operation."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import StringCommand, operation

from etcd_step_pki.facts.accounts import SystemAccount
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands


@operation()
def system_account(
    user: str, *, home: str, shell: str = "/usr/sbin/nologin", private_dirs: Sequence[str] = ()
) -> Commands:
    """
    A system group and a system user of the same name, without a login, and its home
    directory owned by it (a distribution's package may create the directory as root).

    + user: the user and group name (e.g. `etcd`)
    + home: the user's home directory
    + shell: the user's shell
    + private_dirs: directories only the user may enter (0700, its own), e.g. a data directory

    pyinfra's `server.user` reads every account of the host first; this reads one.
    """
    found = host.get_fact(SystemAccount, account=user, home=home, dirs=list(private_dirs))
    home_fix = _home_commands(found["home_owner"], user, home)
    home_fix += [
        script("install -d -m 0700 -o {u} -g {u} {d}", u=user, d=path)
        for path in private_dirs
        if found["dirs"].get(path) != f"{user}:{user} 700"
    ]
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
        yield from home_fix
        return
    current = found["user"]
    fixes = []
    if (current["home"], current["shell"]) != (home, shell):
        fixes += ["--home", home, "--shell", shell]
    if found["group"] is None or current["group_id"] != found["group"]["gid"]:
        fixes += ["--gid", user]
    if fixes:
        yield script("usermod {fixes} {user}", fixes=fixes, user=user)
    yield from home_fix
    if not fixes and not home_fix and found["group"] is not None:
        host.noop(f"system user and group {user} exist, {home} is theirs")


def _home_commands(owner: str | None, user: str, home: str) -> list[StringCommand]:
    if owner is None:
        return [script("install -d -m 0755 -o {u} -g {u} {home}", u=user, home=home)]
    if owner != f"{user}:{user}":
        return [script("chown {u}:{u} {home}", u=user, home=home)]
    return []
