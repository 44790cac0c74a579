"""A system account (user and its group), read with getent: cheap on hosts with many users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.templates.scripts import script as run_script


class SystemAccount(FactBase[dict[str, Any]]):
    """`{"user": {"uid", "group_id", "home", "shell"} | None, "group": {"gid"} | None,
    "home_owner": "<user>:<group> <mode>" | None, "dirs": {path: "<user>:<group> <mode>"}}`
    (owner and mode of the directory `home`, and of each of `dirs` that exists: `link` for a
    symbolic link, `other` for what is no directory)."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"user": None, "group": None, "home_owner": None, "dirs": {}}

    def command(self, account: str, home: str, dirs: Sequence[str] = ()) -> StringCommand:
        return run_script(
            "facts/system-account.sh.j2",
            name=account,
            home=home,
            dirs=list(dirs),
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        result = self.default()
        for line in output:
            kind, _, entry = line.partition(" ")
            fields = entry.strip().split(":")
            if kind == "user" and len(fields) >= 7:
                result["user"] = {
                    "uid": fields[2], "group_id": fields[3], "home": fields[5], "shell": fields[6],
                }  # fmt: skip
            elif kind == "group" and len(fields) >= 3:
                result["group"] = {"gid": fields[2]}
            elif kind == "home" and entry.strip():
                result["home_owner"] = entry.strip()
            elif kind == "dir" and len(entry.split()) == 3:
                path, owner, mode = entry.split()
                result["dirs"][path] = f"{owner} {mode}"
            elif kind == "dir" and len(entry.split()) == 2:
                path, what = entry.split()  # "link" or "other"
                result["dirs"][path] = what
        return result
