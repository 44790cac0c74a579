"""The trust files of a node (links or PEM bundles), read in one command. Public data only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK
from etcd_step_pki.templates.scripts import script as run_script


class TrustFiles(FactBase[dict[str, Any]]):
    """`{path: {"link": target} | {"pem": text} | None}` for each of `paths`."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self, paths: Sequence[str]) -> StringCommand:
        return run_script(
            "facts/trust-files.sh.j2",
            paths=list(paths),
            mark=MARK,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        result: dict[str, dict[str, Any] | None] = {}
        kind: str | None = None
        path: str | None = None
        lines: list[str] = []

        def close() -> None:
            if path is None:
                return
            if kind == "link":
                result[path] = {"link": "\n".join(lines).strip()}
            elif kind == "pem":
                result[path] = {"pem": "\n".join(lines).strip() + "\n"}
            else:
                result[path] = None

        for line in output:
            if line.startswith(MARK):
                close()
                kind, _, path = line[len(MARK) :].partition(" ")
                lines = []
            else:
                lines.append(line)
        close()
        return result
