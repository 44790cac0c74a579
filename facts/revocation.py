"""Revocation as hosts see it: the serial numbers of a host's certificates, and the ones a
certificate revocation list (the CA's, or a member's copy) lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.templates.scripts import script as run_script


def _listed(lines: list[str]) -> set[int] | None:
    if not lines or lines[0] != "ok":
        return None
    return {int(line, 16) for line in lines[1:] if line.strip()}


class Revocation(FactBase[dict[str, Any]]):
    """`{"serials": {certificate file: serial (int)}, "issued": {file: not before (unix
    time)}, "revoked": {serial (int)}, "crl": bool}`: the serials and start times of the
    `certificates` that exist, and the serials the CRL at `crl_url` (read over TLS verified
    against `root`) lists; `crl` is False when the CRL could not be read."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"serials": {}, "issued": {}, "revoked": set(), "crl": False}

    def command(self, certificates: Sequence[str], crl_url: str, root: str) -> StringCommand:
        return run_script(
            "facts/revocation.sh.j2",
            mark=MARK,
            files=list(certificates),
            root=root,
            url=crl_url,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        found = sections(output)
        serials, issued = {}, {}
        for line in found.get("serials", []):
            path, serial, start = [*line.rsplit(" ", 2), "", ""][:3]
            if path and serial and start.isdigit():
                serials[path] = int(serial, 16)
                issued[path] = float(start)
        revoked = _listed(found.get("crl", []))
        return {
            "serials": serials,
            "issued": issued,
            "revoked": revoked or set(),
            "crl": revoked is not None,
        }


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
