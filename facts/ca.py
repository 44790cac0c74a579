"""The state of a step-ca installation: configuration, CA certificates, file modes, health.

Everything is read in one command. No private key and no password is ever read: `ca.json`
holds only the provisioner's public key and its encrypted private key.
"""

from __future__ import annotations

import json

from pyinfra.api import FactBase, StringCommand
from pyinfra.api.facts import FactProcessError

from operations.shell import script

_MARK = "### etcd-step-pki "


class CAState(FactBase[dict]):
    """`{"config": dict | None, "root": PEM | None, "intermediate": PEM | None,
    "files": {path: {"mode": "400", "user": "root", "group": "root", "type": "f" | "d"}}}`.
    """

    @staticmethod
    def default() -> dict:
        return {"config": None, "root": None, "intermediate": None, "files": {}}

    def command(self, path: str) -> StringCommand:
        return script(
            "p={path}; m={mark};"
            ' if [ -f "$p/config/ca.json" ]; then echo "$m"config; cat "$p/config/ca.json"; echo; fi;'
            " for c in root intermediate; do"
            ' if [ -f "$p/certs/${{c}}_ca.crt" ]; then echo "$m$c"; cat "$p/certs/${{c}}_ca.crt"; fi;'
            ' done; echo "$m"files;'
            ' if [ -d "$p" ]; then find "$p" -maxdepth 2 -printf "%m %u %g %y %p\\n"; fi',
            path=path.rstrip("/"),
            mark=_MARK,
        )

    def process(self, output: list[str]) -> dict:
        sections: dict[str, list[str]] = {}
        current = None
        for line in output:
            if line.startswith(_MARK):
                current = line[len(_MARK) :].strip()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        result = self.default()
        if "config" in sections:
            try:
                result["config"] = json.loads("\n".join(sections["config"]))
            except json.JSONDecodeError as error:
                raise FactProcessError(f"ca.json is not valid JSON: {error}") from None
        for kind in ("root", "intermediate"):
            if kind in sections:
                result[kind] = "\n".join(sections[kind]).strip() + "\n"
        for line in sections.get("files", []):
            parts = line.split(" ", 4)
            if len(parts) == 5:
                mode, user, group, kind, path = parts
                result["files"][path] = {"mode": mode, "user": user, "group": group, "type": kind}
        return result


class CAHealth(FactBase[dict]):
    """`{"ok": bool, "detail": str}`: step-ca's `/health` on this host, over TLS verified
    against the root and the CA's name (`--resolve` sends it to this host's own instance).
    """

    @staticmethod
    def default() -> dict:
        return {"ok": False, "detail": "no answer"}

    def command(self, ca_name: str, port: int, root: str) -> StringCommand:
        return script(
            "curl -sS --max-time 5 --cacert {root} --resolve {resolve}"
            " https://{name}:{port}/health 2>&1 || true",
            root=root,
            resolve=f"{ca_name}:{port}:127.0.0.1",
            name=ca_name,
            port=port,
        )

    def process(self, output: list[str]) -> dict:
        text = "\n".join(output).strip()
        try:
            ok = json.loads(text).get("status") == "ok"
        except (json.JSONDecodeError, AttributeError):
            ok = False
        return {"ok": ok, "detail": text}
