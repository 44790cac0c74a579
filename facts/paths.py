"""Which of a set of paths exist on a host, in one command."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.shell import script


class ExistingPaths(FactBase[list[str]]):
    """The paths of `paths` that exist (files, directories or links)."""

    @staticmethod
    def default() -> list[str]:
        return []

    def command(self, paths: Sequence[str]) -> StringCommand:
        return script(
            'for p in {paths}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done',
            paths=list(paths),
        )

    def process(self, output: list[str]) -> list[str]:
        return [line for line in output if line]


class FileText(FactBase[str | None]):
    """The text of a small file, or None when it does not exist."""

    @staticmethod
    def default() -> None:
        return None

    def command(self, path: str) -> StringCommand:
        return script("if [ -f {p} ]; then echo present; cat {p}; fi", p=path)

    def process(self, output: list[str]) -> str | None:
        return "\n".join(output[1:]) if output and output[0] == "present" else None
