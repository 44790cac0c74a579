"""The serial numbers of a host's certificates, and which of them the CA's CRL lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyinfra.api import FactBase, StringCommand

from facts.sections import MARK, sections
from facts.shell import script


class Revocation(FactBase[dict[str, Any]]):
    """`{"serials": {certificate file: serial (int)}, "issued": {file: not before (unix
    time)}, "revoked": {serial (int)}, "crl": bool}`: the serials and start times of the
    `certificates` that exist, and the serials the CRL at `crl_url` (read over TLS verified
    against `root`) lists; `crl` is False when the CRL could not be read."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"serials": {}, "issued": {}, "revoked": set(), "crl": False}

    def command(self, certificates: Sequence[str], crl_url: str, root: str) -> StringCommand:
        return script(
            'echo {mark}serials; for f in {files}; do [ ! -f "$f" ] ||'
            ' echo "$f $(openssl x509 -in "$f" -noout -serial 2>/dev/null | cut -d= -f2)'
            ' $(date -d "$(openssl x509 -in "$f" -noout -startdate | cut -d= -f2)" +%s)"; done;'
            " echo {mark}crl; if crl=$(curl -sf --max-time 10 --cacert {root} {url} |"
            " openssl crl -inform DER -noout -text 2>/dev/null); then echo ok;"
            " printf '%s\\n' \"$crl\" | awk '/Serial Number:/ {{ print $3 }}'; fi",
            mark=MARK,
            files=list(certificates),
            root=root,
            url=crl_url,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        found = sections(output)
        serials, issued = {}, {}
        for line in found.get("serials", []):
            path, serial, start = [*line.rsplit(" ", 2), "", ""][:3]
            if path and serial and start.isdigit():
                serials[path] = int(serial, 16)
                issued[path] = float(start)
        listed = found.get("crl", [])
        return {
            "serials": serials,
            "issued": issued,
            "revoked": {int(s, 16) for s in listed[1:] if s.strip()},
            "crl": bool(listed) and listed[0] == "ok",
        }
