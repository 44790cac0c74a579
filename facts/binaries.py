"""Which release binaries a host has, and its architecture: one command for all of them."""

from __future__ import annotations

import re
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.templates.scripts import script as run_script

RELEASES = "/var/lib/etcd-step-pki/releases"  # <binary>: "<version> <size> <mtime>"
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")


class Binaries(FactBase[dict[str, Any]]):
    """`{"arch": "amd64" | None, "machine": <uname -m>, "versions": {binary: version | None}}`.

    A version is what this tool recorded when it installed the binary (RELEASES/<binary>:
    version, size and modification time), while the binary still has that size and time;
    otherwise what `<binary> version` (or `--version`) prints first, e.g. `0.30.2` from
    `Smallstep CLI/0.30.2 (linux/amd64)`. None when the binary is missing or does not run.
    Starting three Go binaries per host costs more than reading a line.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"arch": None, "machine": None, "versions": {}}

    def command(self, bin_dir: str, binaries: list[str]) -> StringCommand:
        return run_script(
            "facts/binaries.sh.j2",
            binaries=binaries,
            bin_dir=bin_dir.rstrip("/"),
            releases=RELEASES,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        machine = output[0].strip() if output else None
        versions: dict[str, str | None] = {}
        for line in output[1:]:
            name, _, text = line.partition(" ")
            match = _VERSION.search(text)
            versions[name] = match.group(1) if match and text != "-" else None
        return {"arch": ARCHITECTURES.get(machine or ""), "machine": machine, "versions": versions}
