"""The system account a service runs as: its group and user, in one operation."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import OperationError, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.accounts import SystemAccount
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands
from etcd_step_pki.templates.scripts import script as run_script


@operation()
def system_account(
    user: str,
    *,
    home: str,
    shell: str = "/usr/sbin/nologin",
    private_dirs: Sequence[str] = (),
    root_dirs: Sequence[str] = (),
) -> Commands:
    """
    A system group and a system user of the same name, without a login; its home directory
    root's (0755) unless it is one of its private directories, so that the account cannot
    swap what root later acts on (a data directory replaced by a link to /etc); each private
    directory the account's, 0700.

    + user: the user and group name (e.g. `etcd`)
    + home: the user's home directory
    + shell: the user's shell
    + private_dirs: directories only the user may enter (0700, its own), e.g. a data directory
    + root_dirs: directories root writes in that hold the user's files (0755, root's), e.g.
      the certificates' directory, which an earlier layout may have given to the user

    A private directory that is a symbolic link, or no directory, is refused: a privileged
    step never follows a path the account controls. pyinfra's `server.user` reads every
    account of the host first; this reads one.
    """
    found = memo.get_fact(
        host, SystemAccount, account=user, home=home, dirs=[*private_dirs, *root_dirs]
    )
    refused = [path for path in private_dirs if found["dirs"].get(path) in ("link", "other")]
    if refused:
        raise OperationError(
            f"{', '.join(refused)}: a symbolic link or no directory where {user}'s private "
            "directory belongs: refused (remove it as root after checking where it points)"
        )
    home_is_private = home in private_dirs
    directories_ok = (
        (home_is_private or found["home_owner"] == "root:root 755")
        and all(found["dirs"].get(path) == f"{user}:{user} 700" for path in private_dirs)
        and all(found["dirs"].get(path) == "root:root 755" for path in root_dirs)
    )
    directories = run_script(
        "account-directories.sh.j2",
        user=user,
        home=home,
        home_is_private=home_is_private,
        private=list(private_dirs),
        root_owned=list(root_dirs),
    )
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
        yield directories
        return
    current = found["user"]
    fixes = []
    if (current["home"], current["shell"]) != (home, shell):
        fixes += ["--home", home, "--shell", shell]
    if found["group"] is None or current["group_id"] != found["group"]["gid"]:
        fixes += ["--gid", user]
    if fixes:
        yield script("usermod {fixes} {user}", fixes=fixes, user=user)
    if not directories_ok:
        yield directories
    if not fixes and directories_ok and found["group"] is not None:
        host.noop(f"system user and group {user} exist, their directories are in place")
