"""etcd facts: a member's local state, and the cluster as one member's etcdctl sees it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.facts.shell import script
from etcd_step_pki.templates.scripts import script as run_script


def etcdctl(
    etcdctl_path: str, cacert: str, cert: str, key: str, endpoints: str = "https://127.0.0.1:2379"
) -> list[str]:
    """An etcdctl command line with the client certificate (paths only, no secret)."""
    return [
        etcdctl_path,
        f"--endpoints={endpoints}",
        f"--cacert={cacert}",
        f"--cert={cert}",
        f"--key={key}",
        "--dial-timeout=3s",
        "--command-timeout=8s",
    ]


class EtcdMember(FactBase[dict[str, Any]]):
    """`{"config": text | None, "bootstrapped": bool, "active": bool, "pid": str,
    "started": unix time | None, "modified": {path: unix time}}`: the member's configuration
    file, whether its data directory holds a member, its unit and since when it runs, and
    when each of `files` (configuration, unit file, binary) last changed."""

    # facts/memo.py: a read of more files answers a read of fewer.
    NARROWS = "files"

    @staticmethod
    def narrowed(found: dict[str, Any], files: set[str]) -> dict[str, Any]:
        """What a read of `files` alone would have found."""
        return {**found, "modified": {f: t for f, t in found["modified"].items() if f in files}}

    @staticmethod
    def default() -> dict[str, Any]:
        return {
            "config": None,
            "bootstrapped": False,
            "active": False,
            "pid": "0",
            "started": None,
            "modified": {},
        }

    def command(
        self, config: str, data_dir: str, unit: str, files: Sequence[str] = ()
    ) -> StringCommand:
        return run_script(
            "facts/etcd-member.sh.j2",
            mark=MARK,
            unit=unit,
            data=data_dir,
            files=list(files),
            config=config,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = sections(output)
        # `systemctl show` prints properties in its own order, not the order asked for.
        unit = dict(line.strip().partition("=")[::2] for line in parts.get("unit", []))
        result = self.default()
        result["active"] = unit.get("ActiveState") == "active"
        result["pid"] = unit.get("MainPID", "0")
        result["bootstrapped"] = parts.get("data", ["no"])[0].strip() == "yes"
        started = unit.get("ActiveEnterTimestamp", "")
        if started.startswith("@") and started[1:].isdigit() and started != "@0":
            result["started"] = int(started[1:])
        for line in parts.get("files", []):
            when, _, path = line.partition(" ")
            if when.isdigit():
                result["modified"][path] = int(when)
        if "config" in parts:
            result["config"] = "\n".join(parts["config"]) + "\n"
        return result


class EtcdCluster(FactBase[dict[str, Any]]):
    """`{"members": [...], "health": [...], "status": [...], "error": str | None}` from
    `etcdctl member list`, `endpoint health --cluster` and `endpoint status --cluster`."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"members": [], "health": [], "status": [], "error": "no answer"}

    def command(self, etcdctl_args: list[str]) -> StringCommand:
        return run_script("facts/etcd-cluster.sh.j2", mark=MARK, etcdctl=etcdctl_args)

    def process(self, output: list[str]) -> dict[str, Any]:
        parts = sections(output)
        result = self.default()
        errors = []
        members = _json(parts.get("members", []))
        if isinstance(members, dict):
            result["members"] = [
                {
                    "id": format(m.get("ID", 0), "x"),
                    "name": m.get("name", ""),
                    "peer_urls": m.get("peerURLs", []),
                    "client_urls": m.get("clientURLs", []),
                    "learner": m.get("isLearner", False),
                }
                for m in members.get("members", [])
            ]
        else:
            errors.append(" ".join(parts.get("members", [])).strip())
        health = _json(parts.get("health", []))
        if isinstance(health, list):
            result["health"] = [
                {"endpoint": h.get("endpoint"), "healthy": h.get("health", False),
                 "error": h.get("error", "")}
                for h in health
            ]  # fmt: skip
        else:
            errors.append(" ".join(parts.get("health", [])).strip())
        status = _json(parts.get("status", []))
        if isinstance(status, list):
            result["status"] = [
                {
                    "endpoint": s.get("Endpoint"),
                    "id": format(s.get("Status", {}).get("header", {}).get("member_id", 0), "x"),
                    "leader": format(s.get("Status", {}).get("leader", 0), "x"),
                    "db_size": s.get("Status", {}).get("dbSize", 0),
                    "db_size_in_use": s.get("Status", {}).get("dbSizeInUse", 0),
                    "revision": s.get("Status", {}).get("header", {}).get("revision", 0),
                    "applied": s.get("Status", {}).get("raftAppliedIndex", 0),
                    "version": s.get("Status", {}).get("version", ""),
                }
                for s in status
            ]
        result["error"] = "; ".join(e for e in errors if e) or None
        return result


class EtcdHealthy(FactBase[bool]):
    """Whether every member of the cluster answers healthy (`endpoint health --cluster`: one
    etcdctl run, which asks every member the cluster lists)."""

    @staticmethod
    def default() -> bool:
        return False

    def command(self, etcdctl_args: list[str]) -> StringCommand:
        return script("{etcdctl} endpoint health --cluster -w json 2>/dev/null || true",
                      etcdctl=etcdctl_args)  # fmt: skip

    def process(self, output: list[str]) -> bool:
        found = _json(output)
        return (
            isinstance(found, list)
            and bool(found)
            and all(isinstance(h, dict) and h.get("health") for h in found)
        )


def member_status(cluster: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The `endpoint status` entry of the member called `name`, if it answered."""
    ids = {m["id"] for m in cluster["members"] if m["name"] == name}
    return next((s for s in cluster["status"] if s["id"] in ids), None)


def cluster_healthy(cluster: dict[str, Any]) -> bool:
    """Every member answers and is healthy."""
    health = cluster["health"]
    return (
        cluster["error"] is None
        and bool(health)
        and len(health) >= len(cluster["members"])
        and all(h["healthy"] for h in health)
    )


def _json(lines: list[str]) -> object:
    """The JSON document etcdctl printed: whole, or the one line of it among etcdctl's own log
    lines (JSON records with a level and a message, such as a member that does not answer)."""
    text = "\n".join(lines).strip()
    for candidate in (text, *text.split("\n")):
        try:
            found = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not (isinstance(found, dict) and {"level", "msg"} <= found.keys()):
            return found
    return None


class EtcdCompacted(FactBase[bool]):
    """Whether the history before `revision` is compacted away (a read at revision - 1 is
    refused as compacted)."""

    @staticmethod
    def default() -> bool:
        return False

    def command(self, etcdctl_args: list[str], revision: int) -> StringCommand:
        return script(
            "{etcdctl} get / --rev={before} --limit 1 --keys-only 2>&1 | grep -c compacted || true",
            etcdctl=etcdctl_args,
            before=max(revision - 1, 1),
        )

    def process(self, output: list[str]) -> bool:
        return bool(output) and output[0].strip() not in ("", "0")


class EtcdVersions(FactBase[dict[str, str]]):
    """`{"etcdserver": "3.6.14", "etcdcluster": "3.6.0", "storage": "3.6.0"}`: what etcd's
    `/version` answers on the member's client port (with the client certificate); the
    cluster version is the lowest minor release every member runs, `storage` 3.6 and later
    only. `{}` when it does not answer."""

    @staticmethod
    def default() -> dict[str, str]:
        return {}

    def command(self, cacert: str, cert: str, key: str, url: str) -> StringCommand:
        return script(
            "curl -fsS --max-time 8 --cacert {cacert} --cert {cert} --key {key} {url}/version"
            " 2>/dev/null || true",
            cacert=cacert,
            cert=cert,
            key=key,
            url=url,
        )

    def process(self, output: list[str]) -> dict[str, str]:
        found = _json(output)
        if not isinstance(found, dict):
            return {}
        return {str(k): str(v) for k, v in found.items()}
