"""What step-ca recorded: every certificate it issued and the serial numbers it revoked, read
from a point-in-time copy of its database on the cert-manager. The deploys decide what to
revoke from these records, never from the files of the host being distrusted."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyinfra.api import FactBase, StringCommand
from pyinfra.api.facts import FactProcessError

from etcd_step_pki.facts.bolt import BoltError, BoltFile
from etcd_step_pki.facts.certificates import parse_certificate
from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.templates.scripts import script as run_script

# step-ca's tables (buckets): issued certificates by serial (decimal) -> DER, and revocations.
ISSUED = b"x509_certs"
REVOKED = b"revoked_x509_certs"


def records(data: bytes) -> dict[str, Any]:
    """`{"issued": [certificate...], "revoked": {serial}}` of a database file's bytes; each
    certificate as facts.certificates.parse_certificate gives it, its serial an int."""
    bolt = BoltFile(data)
    issued = _issued(der for _, der in bolt.items(ISSUED))
    revoked = {int(key) for key, _ in bolt.items(REVOKED) if key.isdigit()}
    return {"issued": issued, "revoked": revoked}


def _issued(ders: Iterable[bytes]) -> list[dict[str, Any]]:
    """Each certificate that parses, as parse_certificate gives it, its serial an int."""
    issued = []
    for der in ders:
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        pem = cert.public_bytes(Encoding.PEM).decode()
        found = parse_certificate(pem)
        found["serial"] = cert.serial_number
        del found["pem"]
        issued.append(found)
    return issued


class CARecords(FactBase[dict[str, Any] | None]):
    """step-ca's records (`records()`), or None where there is no database; a database that
    does not read (not bbolt, or damaged) fails the fact."""

    @staticmethod
    def default() -> None:
        return None

    def command(self, source: str, lock: str, limit: int) -> StringCommand:
        return run_script(
            "facts/ca-records.sh.j2", source=source, lock=lock, limit=limit, mark=MARK
        )

    def process(self, output: list[str]) -> dict[str, Any] | None:
        found = sections(output)
        if "database" not in found:
            return None
        try:
            return records(base64.b64decode("".join(found["database"]), validate=True))
        except (BoltError, binascii.Error, ValueError) as error:
            raise FactProcessError(f"step-ca's database does not read: {error}") from error


class GaleraRecords(FactBase[dict[str, Any] | None]):
    """step-ca's records in the Galera database (ca_ha=active-active) as `records()` gives
    them, read on a node; None where MariaDB does not answer. Every node holds all of them."""

    @staticmethod
    def default() -> None:
        return None

    def command(self, database: str) -> StringCommand:
        return run_script("facts/galera-records.sh.j2", database=database, mark=MARK)

    def process(self, output: list[str]) -> dict[str, Any] | None:
        found = sections(output)
        if "issued" not in found:
            return None
        try:
            ders = [bytes.fromhex(line.strip()) for line in found["issued"] if line.strip()]
        except ValueError as error:
            raise FactProcessError(f"step-ca's records do not read: {error}") from error
        revoked = {int(key) for key in found.get("revoked", []) if key.strip().isdigit()}
        return {"issued": _issued(ders), "revoked": revoked}
