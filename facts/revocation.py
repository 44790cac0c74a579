"""Revocation as members see it: the serial numbers a certificate revocation list (the CA's,
or a member's copy) lists."""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.templates.scripts import script as run_script


def _listed(lines: list[str]) -> set[int] | None:
    if not lines or lines[0] != "ok":
        return None
    return {int(line, 16) for line in lines[1:] if line.strip()}


class RevocationLists(FactBase[dict[str, Any]]):
    """`{"local": {serial (int)} | None, "ca": {serial (int)} | None}`: the serials the CRL
    file at `path` lists and those the CA's CRL at `crl_url` lists (None: unreadable)."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"local": None, "ca": None}

    def command(self, path: str, crl_url: str, root: str) -> StringCommand:
        return run_script(
            "facts/revocation-lists.sh.j2",
            mark=MARK,
            path=path,
            root=root,
            url=crl_url,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        found = sections(output)
        return {name: _listed(found.get(name, [])) for name in ("local", "ca")}
