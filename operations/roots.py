"""The pinned root: the one root certificate every host may trust.

Set by the operator (`step_ca_root_fingerprint`), or recorded on the controller by the first
run that finds a root, a root that differs is refused before anything trusts it: when a node
bootstraps its trust, when a backup cert-manager takes the primary's state, when a restore
brings a state back. A root replaced on purpose is accepted by a run that says so.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyinfra.api import OperationError


def root_fingerprint(root_pem: str) -> str:
    """SHA-256 of the root certificate's DER, as `step certificate fingerprint` prints it and
    `step ca bootstrap --fingerprint` wants it."""
    cert = x509.load_pem_x509_certificate(root_pem.encode())
    return hashlib.sha256(cert.public_bytes(encoding=Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class PinnedRoot:
    """The root's SHA-256 that hosts may trust (None: nothing pinned yet), the controller file
    the root found is recorded in (None: none), and what pinned it (for messages)."""

    fingerprint: str | None
    record: str | None = None
    source: str = "step_ca_root_fingerprint"


def refuse_other(root_pem: str, pin: PinnedRoot | None, where: str) -> None:
    """An OperationError naming both roots when `root_pem` is not the pinned root."""
    if pin is None or pin.fingerprint is None or not root_pem:
        return
    found = root_fingerprint(root_pem)
    if found != pin.fingerprint:
        raise OperationError(
            f"{where} has root {found}, not the pinned {pin.fingerprint} ({pin.source}): "
            "refusing to trust another root; nothing was changed. If the CA was replaced on "
            "purpose, run again with --data ca_accept_new_root=true (or set "
            "step_ca_root_fingerprint to the new root)"
        )


def record(root_pem: str, pin: PinnedRoot | None) -> None:
    """Record the root found on the controller, when nothing pins one yet."""
    if pin is None or pin.record is None or pin.fingerprint is not None or not root_pem:
        return
    path = Path(pin.record)
    text = root_fingerprint(root_pem) + "\n"
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
