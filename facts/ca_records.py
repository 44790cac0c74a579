"""What step-ca recorded: every certificate it issued and the serial numbers it revoked, read
from a point-in-time copy of its database on the cert-manager. The deploys decide what to
revoke from these records, never from the files of the host being distrusted."""

from __future__ import annotations

import base64
import binascii
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
    issued = []
    for _, der in bolt.items(ISSUED):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            continue
        pem = cert.public_bytes(Encoding.PEM).decode()
        found = parse_certificate(pem)
        found["serial"] = cert.serial_number
        del found["pem"]
        issued.append(found)
    revoked = {int(key) for key, _ in bolt.items(REVOKED) if key.isdigit()}
    return {"issued": issued, "revoked": revoked}


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
