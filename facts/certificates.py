"""A node's certificates and trust, read in one command and parsed on the controller.

Only public material crosses the wire: certificate PEMs, the public key derived on the node
from each private key (`openssl pkey -pubout`), file modes, and the step CLI's trust files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID
from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK
from etcd_step_pki.templates.scripts import script as run_script


def _public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def parse_certificate(pem: str, now: float | None = None) -> dict[str, Any]:
    """What the deploys and the status report need to know of one certificate (the leaf of
    a chain file)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(v) for v in ext.get_values_for_type(x509.DNSName)]
        sans += [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    start = cert.not_valid_before_utc.timestamp()
    end = cert.not_valid_after_utc.timestamp()
    now = time.time() if now is None else now
    lifetime = max(end - start, 1.0)
    return {
        "subject": _common_name(cert.subject),
        "issuer": _common_name(cert.issuer),
        "sans": sans,
        "serial": format(cert.serial_number, "x"),
        "not_before": start,
        "not_after": end,
        "lifetime_used": (now - start) / lifetime,
        "public_key": _public_der(cert.public_key()).hex(),
        "pem": pem,
    }


def public_key_of(pem: str) -> str | None:
    """The DER of a PEM public key, hex; None when it does not parse."""
    try:
        return _public_der(serialization.load_pem_public_key(pem.encode())).hex()
    except ValueError:
        return None


class NodeCertificates(FactBase[dict[str, Any]]):
    """`{"trust": {...}, "files": {crt path: {...}}}` (what the host calls itself is not
    asked: a certificate's names come from the inventory only).

    Per certificate: `cert` (parsed, or None when missing or unreadable), `key_public`
    (hex DER of the key's public half, or None), `modes` of the crt and key files (through
    their links), and `links`: where the crt and key names and the pair's link lead ("" for
    a plain file), and what that pair's generation is (`directory root`).
    """

    @staticmethod
    def default() -> dict[str, Any]:
        return {"trust": {}, "files": {}}

    def command(
        self, ssl_dir: str, step_path: str, pairs: Sequence[tuple[str, str]]
    ) -> StringCommand:
        flat = [path for pair in pairs for path in pair]
        return run_script(
            "facts/node-certificates.sh.j2",
            mark=MARK,
            step_path=step_path,
            ssl_dir=ssl_dir,
            flat=flat,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        result = self.default()
        sections: dict[tuple[str, str], list[str]] = {}
        key: tuple[str, str] | None = None
        for line in output:
            if line.startswith(MARK):
                kind, _, arg = line[len(MARK) :].partition(" ")
                key = (kind.strip(), arg.strip())
                sections[key] = []
            elif key is not None:
                sections[key].append(line)
        result["trust"] = self._trust(sections)
        for (kind, path), lines in sections.items():
            if kind != "cert":
                continue
            result["files"][path] = {
                "cert": self._cert("\n".join(lines)),
                "key_public": public_key_of("\n".join(sections.get(("pub", path), []))),
                "modes": self._modes(sections.get(("modes", path), [])),
                "links": [*sections.get(("names", path), []), "", "", "", ""][:4],
            }
        return result

    @staticmethod
    def _trust(sections: dict[tuple[str, str], list[str]]) -> dict[str, Any]:
        text = "\n".join(sections.get(("defaults", ""), [])).strip()
        try:
            defaults = json.loads(text) if text else None
        except json.JSONDecodeError:
            defaults = None
        links = {}
        for line in sections.get(("links", ""), []):
            name, _, target = line.partition(" ")
            links[name] = target.strip() or None
        pems = {}
        for kind in ("step-root", "ssl-root", "ssl-chain"):
            pem = "\n".join(sections.get((kind, ""), [])).strip()
            pems[kind] = pem + "\n" if pem else None
        return {
            "defaults": defaults,
            "step_root": pems["step-root"],
            "ssl_root": pems["ssl-root"],
            "ssl_chain": pems["ssl-chain"],
            "links": links,
        }

    @staticmethod
    def _cert(text: str) -> dict[str, Any] | None:
        if "BEGIN CERTIFICATE" not in text:
            return None
        try:
            return parse_certificate(text.strip() + "\n")
        except ValueError:
            return None

    @staticmethod
    def _modes(lines: list[str]) -> dict[str, dict[str, str]]:
        modes = {}
        for line in lines:
            parts = line.split(" ", 3)
            if len(parts) == 4:
                modes[parts[3]] = {"mode": parts[0], "user": parts[1], "group": parts[2]}
        return modes
