"""The state of a step-ca installation: configuration, CA certificates, file modes, health.

Everything is read in one command. No private key and no password is ever read: `ca.json`
holds only the provisioner's public key and its encrypted private key.
"""

from __future__ import annotations

import json
from typing import Any

from pyinfra.api import FactBase, StringCommand
from pyinfra.api.facts import FactProcessError

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.facts.shell import script
from etcd_step_pki.templates import url_host
from etcd_step_pki.templates.scripts import script as run_script


class CAState(FactBase[dict[str, Any]]):
    """`{"config": dict | None, "root": PEM | None, "intermediate": PEM | None,
    "files": {path: {"mode": "400", "user": "root", "group": "root", "type": "f" | "d"}}}`.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"config": None, "root": None, "intermediate": None, "files": {}}

    def command(self, path: str) -> StringCommand:
        return run_script(
            "facts/ca-state.sh.j2",
            path=path.rstrip("/"),
            mark=MARK,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        found = sections(output)
        result = self.default()
        if "config" in found:
            try:
                result["config"] = json.loads("\n".join(found["config"]))
            except json.JSONDecodeError as error:
                raise FactProcessError(f"ca.json is not valid JSON: {error}") from None
        for kind in ("root", "intermediate"):
            if kind in found:
                result[kind] = "\n".join(found[kind]).strip() + "\n"
        for line in found.get("files", []):
            parts = line.split(" ", 4)
            if len(parts) == 5:
                mode, user, group, kind, path = parts
                result["files"][path] = {"mode": mode, "user": user, "group": group, "type": kind}
        return result


class CAHealth(FactBase[dict[str, Any]]):
    """`{"ok": bool, "detail": str}`: step-ca's `/health` over TLS verified against the root
    and the CA's name, sent to `address` (default this host's own instance; None: wherever
    the name resolves).
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"ok": False, "detail": "no answer"}

    def command(
        self, ca_name: str, port: int, root: str, address: str | None = "127.0.0.1"
    ) -> StringCommand:
        resolve = ["--resolve", f"{ca_name}:{port}:{url_host(address)}"] if address else []
        return script(
            "curl -sS --max-time 5 --cacert {root} {resolve} {url} 2>&1 || true",
            root=root,
            resolve=resolve,
            url=f"https://{url_host(ca_name)}:{port}/health",
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        text = "\n".join(output).strip()
        try:
            ok = json.loads(text).get("status") == "ok"
        except (json.JSONDecodeError, AttributeError):
            ok = False
        return {"ok": ok, "detail": text}


class CAFiles(FactBase[dict[str, Any]]):
    """`{relative path: sha256}` of every file of a CA's state: what replication compares.

    Hashes only: no content of a key or password crosses the wire.
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {}

    def command(self, path: str) -> StringCommand:
        return script(
            "if [ -d {path} ]; then cd {path} && find . -type f -print0 | sort -z"
            " | xargs -0 -r sha256sum; fi",
            path=path.rstrip("/"),
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        files = {}
        for line in output:
            digest, _, name = line.partition("  ")
            if name:
                files[name.removeprefix("./")] = digest
        return files
