"""The pinned root: the one root certificate every host may trust.

Set by the operator (`step_ca_root_fingerprint`), or recorded on the controller, in a file the
operator commits beside the inventory: by the run that initialises the CA, or by a run that
says so (`ca_accept_new_root=true`). A root that differs from the pinned one, or any root while
nothing pins one (a fresh checkout or another controller without the record), is refused
before anything trusts it: when a node bootstraps its trust, when a backup cert-manager takes
the primary's state, when a restore brings a state back.
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
    """The root's SHA-256 that hosts may trust (None: nothing pinned when the run began), the
    controller file the root is recorded in (None: none), what pinned it (for messages), and
    whether the run records whatever root it finds (the operator said so)."""

    fingerprint: str | None
    record: str | None = None
    source: str = "step_ca_root_fingerprint"
    accept_found: bool = False


def _pinned(pin: PinnedRoot) -> str | None:
    """The fingerprint to hold the root to: set, or recorded (also by this run, when it
    initialised the CA); None when the run accepts whatever it finds."""
    if pin.fingerprint or pin.accept_found or pin.record is None:
        return pin.fingerprint
    path = Path(pin.record)
    found = path.read_text().split() if path.is_file() else []
    return found[0] if found else None


def refuse_other(root_pem: str, pin: PinnedRoot | None, where: str) -> None:
    """An OperationError naming both roots when `root_pem` is not the pinned root, or naming
    the root found when nothing pins one and the run does not accept it."""
    if pin is None or not root_pem:
        return
    found = root_fingerprint(root_pem)
    wanted = _pinned(pin)
    if wanted is None and not pin.accept_found and pin.record is not None:
        raise OperationError(
            f"{where} has root {found}, and nothing pins the root this inventory trusts: "
            f"{pin.record} is missing (a fresh checkout, or another controller?). Nothing was "
            f"changed. If {found} is your CA's root, record it: run again with --data "
            f"ca_accept_new_root=true (which writes that file), or set "
            f"step_ca_root_fingerprint={found}; then commit it with the inventory"
        )
    if wanted is not None and found != wanted:
        source = pin.source if pin.fingerprint else f"recorded in {pin.record}"
        raise OperationError(
            f"{where} has root {found}, not the pinned {wanted} ({source}): "
            "refusing to trust another root; nothing was changed. If the CA was replaced on "
            "purpose, run again with --data ca_accept_new_root=true (or set "
            "step_ca_root_fingerprint to the new root)"
        )


def record(root_pem: str, pin: PinnedRoot | None, *, new_ca: bool = False) -> None:
    """Record the root found on the controller: the root of a CA this run initialised
    (`new_ca`), or any root the operator accepts; never over a root the operator set."""
    if pin is None or pin.record is None or pin.fingerprint is not None or not root_pem:
        return
    path = Path(pin.record)
    if not (pin.accept_found or (new_ca and not path.is_file())):
        return
    text = root_fingerprint(root_pem) + "\n"
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
