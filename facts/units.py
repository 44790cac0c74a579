"""Unit files and states of a set of systemd units, in one command."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from facts.sections import MARK
from facts.shell import script

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

    `UnitFileState` is what `systemctl is-enabled` reads from the disk: `systemctl show`
    reports the state systemd had when it last loaded the unit, which an `enable
    --no-reload` does not update."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"files": {}, "states": {}}

    def command(
        self, units: Sequence[str], directory: str = "/etc/systemd/system"
    ) -> StringCommand:
        return script(
            'for u in {units}; do f={directory}/"$u"; s="-"; [ ! -f "$f" ] ||'
            ' s=$(sha256sum < "$f" | cut -c1-64);'
            ' printf "%s %s %s\\n" "$u" "$s" "$(systemctl is-enabled "$u" 2>/dev/null)"; done;'
            " echo {mark}states;"
            " systemctl show --no-pager {props} -- {units} 2>/dev/null || true",
            units=list(units),
            directory=directory.rstrip("/"),
            mark=MARK,
            props=[flag for p in PROPERTIES for flag in ("-p", p)],
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        result = self.default()
        on_disk: dict[str, str] = {}
        lines = iter(output)
        for line in lines:
            if line.startswith(MARK):
                break
            name, digest, enabled = [*line.split(" ", 2), "", ""][:3]
            result["files"][name] = None if digest.strip() in ("-", "") else digest.strip()
            on_disk[name] = enabled.strip()
        current: dict[str, str] = {}
        for line in [*lines, ""]:
            if not line.strip():
                if "Id" in current:
                    result["states"][current["Id"]] = current
                current = {}
                continue
            key, _, value = line.partition("=")
            current[key] = value
        for name, enabled in on_disk.items():
            if enabled:
                result["states"].setdefault(name, {"Id": name})["UnitFileState"] = enabled
        return result
