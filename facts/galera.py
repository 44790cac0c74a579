"""The CA's Galera database on a node: MariaDB running or not, the node's place in the
cluster, its state file, and step-ca's account."""

from __future__ import annotations

from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.templates.scripts import script


class GaleraStatus(FactBase[dict[str, Any]]):
    """`{"running": bool, "status": {wsrep variable: value}, "grastate": {key: value},
    "grants": [line]}`: `status` is empty when MariaDB does not run."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"running": False, "status": {}, "grastate": {}, "grants": []}

    def command(self, grastate: str, account: str) -> StringCommand:
        return script("facts/galera-status.sh.j2", grastate=grastate, account=account)

    def process(self, output: list[str]) -> dict[str, Any]:
        found = self.default()
        for line in output:
            key, _, value = line.partition(" ")
            if key == "running":
                found["running"] = value == "yes"
            elif key == "grant":
                found["grants"].append(value)
            elif key.startswith("grastate_"):
                found["grastate"][key.removeprefix("grastate_")] = value.strip()
            elif key.startswith("wsrep_"):
                found["status"][key] = value.strip()
        return found
