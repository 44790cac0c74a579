"""Unit files and states of a set of systemd units, in one command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.templates.scripts import script as run_script

PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "Result",
    "ExecMainStatus",
    "ExecMainExitTimestamp",
    "LastTriggerUSec",
    "NextElapseUSecRealtime",
)


class Units(FactBase[dict[str, Any]]):
    """`{"files": {unit: sha256 | None}, "states": {unit: {property: value}}}` for the units
    under `directory` (default /etc/systemd/system).

    `UnitFileState` is what `systemctl list-unit-files` reads from the disk: `systemctl show`
    reports the state systemd had when it last loaded the unit, which an `enable
    --no-reload` does not update."""

    # facts/memo.py: a read of more units answers a read of fewer.
    NARROWS = "units"

    @staticmethod
    def default() -> dict[str, Any]:
        return {"files": {}, "states": {}}

    @staticmethod
    def narrowed(found: dict[str, Any], units: set[str]) -> dict[str, Any]:
        """What a read of `units` alone would have found."""
        return {key: {u: v for u, v in found[key].items() if u in units} for key in found}

    def command(
        self, units: Sequence[str], directory: str = "/etc/systemd/system"
    ) -> StringCommand:
        # One sha256sum, one list-unit-files and one show for all units: a systemctl call
        # per unit costs about 10 ms each on a host.
        return run_script(
            "facts/units.sh.j2",
            units=list(units),
            directory=directory.rstrip("/"),
            mark=MARK,
            props=[flag for p in PROPERTIES for flag in ("-p", p)],
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        result = self.default()
        found = sections([f"{MARK}files", *output])
        for line in found.get("files", []):
            digest, _, name = line.partition("  ")
            result["files"][name.strip()] = None if digest == "-" else digest.strip()
        current: dict[str, str] = {}
        for line in [*found.get("states", []), ""]:
            if not line.strip():
                if "Id" in current:
                    result["states"][current["Id"]] = current
                current = {}
                continue
            key, _, value = line.partition("=")
            current[key] = value
        for line in found.get("enabled", []):
            name, enabled = [*line.split(), "", ""][:2]
            if name and enabled:
                result["states"].setdefault(name, {"Id": name})["UnitFileState"] = enabled
        return result
