"""Which of a set of paths exist on a host, in one command."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, StringCommand

from operations.shell import script


class ExistingPaths(FactBase[list]):
    """The paths of `paths` that exist (files, directories or links)."""

    @staticmethod
    def default() -> list:
        return []

    def command(self, paths: Sequence[str]) -> StringCommand:
        return script(
            'for p in {paths}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done',
            paths=list(paths),
        )

    def process(self, output: list[str]) -> list:
        return [line for line in output if line]
