"""The root key offline: after initialisation only the intermediate key stays online.

With `ca_root_key_offline`, every cert-manager's root key (`secrets/root_ca_key`, already
encrypted with the CA password) is encrypted on the host to the operator's GnuPG key (the
backup recipient), the ciphertext kept on the controller beside the inventory (its first line
names the root it belongs to), and the key removed from the host: from the CA state and from
any state a restore set aside. A stolen cert-manager then holds no key that can make a new
intermediate. Rotating the intermediate brings the root key back for that step alone: the
ciphertext and the operator's private key on standard input, decrypted into a private
directory in memory that is removed however the step ends (ca-intermediate-rotate.sh.j2).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gevent.lock
from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.api.state import State
from pyinfra.facts.files import FindFiles

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.facts.shell import raw
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import root_fingerprint
from etcd_step_pki.templates.scripts import script

ROOT_KEY = "secrets/root_ca_key"
# One export at a time: every cert-manager holds the same key, one ciphertext is kept.
_export_lock = gevent.lock.Semaphore()


@dataclass(frozen=True)
class OfflineRoot:
    """Where a rotation finds the root key that is on no cert-manager: the controller's
    ciphertext, and the operator's armored private key that decrypts it (None: not given)."""

    export_file: str
    private_key: str | None = field(default=None, repr=False)


def offline_root_key(offline: OfflineRoot | None, fingerprint: str, path: str) -> str:
    """What a rotation reads on standard input when the root key is offline: the operator's
    private key, then the root key's ciphertext. OperationError naming what is missing."""
    if offline is None or offline.private_key is None:
        raise OperationError(
            f"the root key is on no cert-manager (no {path}/{ROOT_KEY}): rotating needs it back "
            "for the step, run with --data ca_restore_private_key=<the file with the private "
            "key of ca_backup_recipient_key>"
        )
    if exported_root(offline.export_file) != fingerprint:
        raise OperationError(
            f"the root key is on no cert-manager and {offline.export_file} does not hold the "
            f"key of this CA's root ({fingerprint}): put the file kept with the inventory back"
        )
    message = Path(offline.export_file).read_text().split("\n", 1)[1]
    return offline.private_key.rstrip("\n") + "\n" + message


def exported_root(export_file: str) -> str | None:
    """The root fingerprint the controller's ciphertext belongs to (its first line), or None
    when there is none."""
    path = Path(export_file)
    if not path.is_file():
        return None
    match = re.fullmatch(r"# root ([0-9a-f]{64})", path.read_text().split("\n", 1)[0])
    return match.group(1) if match else ""


def _root_keys(path: str) -> list[str]:
    """This host's copies of the root key: the CA state's, and those of states set aside."""
    parent, base = path.rstrip("/").rsplit("/", 1)
    found = memo.get_fact(host, FindFiles, path=parent or "/", maxdepth=3, fname="root_ca_key")
    pattern = re.compile(re.escape(f"{parent}/{base}") + r"(\.before-restore-\d{14})?/" + ROOT_KEY)
    return sorted(name for name in found or [] if pattern.fullmatch(name))


@operation()
def root_key_offline(
    path: str, *, export_file: str, recipient_key: str, primary: bool = False
) -> Commands:
    """
    Keep the root key off this cert-manager: exported encrypted to the controller once, then
    removed from the host (also right after a CA is initialised in the same run).

    + path: the CA's `$STEPPATH`
    + export_file: the controller file that keeps the encrypted root key
    + recipient_key: the armored GnuPG public key it is encrypted to (on standard input)
    + primary: this host initialises the CA when there is none
    """
    found = memo.get_fact(host, CAState, path=path)
    fingerprint = None
    if found["config"] is None:
        if not primary:
            host.noop("no CA state here yet: it comes without the root key")
            return
        copies = [f"{path}/{ROOT_KEY}"]  # the CA this run initialises
    else:
        copies = _root_keys(path)
        if not copies:
            host.noop("the root key is on no disk of this cert-manager")
            return
        if not found["root"]:
            raise OperationError(f"{path} holds a root key but no root certificate")
        fingerprint = root_fingerprint(found["root"])
        _refuse_another(export_file, fingerprint)
    yield RunTimeStep(_kept_offline, path, export_file, fingerprint, recipient_key, copies)


def _refuse_another(export_file: str, fingerprint: str) -> None:
    exported = exported_root(export_file)
    if exported not in (None, fingerprint):
        raise OperationError(
            f"{export_file} holds the root key of another root ({exported or 'unnamed'}), not "
            f"of this CA's ({fingerprint}): nothing was removed. Move it away and run again"
        )


def _kept_offline(
    state: State,
    remote: Remote,
    path: str,
    export_file: str,
    fingerprint: str | None,
    recipient: str,
    copies: list[str],
) -> bool:
    """Run time: the root key encrypted on the host and kept on the controller (unless it is
    kept there already), then every copy removed from the host; nothing is removed when the
    export fails."""
    del state
    if fingerprint is None:
        # The CA this run initialised (when the run did initialise it).
        ok, out = remote.run(
            raw("[ ! -e {key} ] || cat -- {root}", key=copies[0], root=f"{path}/certs/root_ca.crt")
        )
        if not ok:
            return remote.fail(f"reading the root failed: {out.stderr}")
        if not out.stdout.strip():
            return True
        fingerprint = root_fingerprint(out.stdout)
        try:
            _refuse_another(export_file, fingerprint)
        except OperationError as error:
            return remote.fail(str(error))
    with _export_lock:
        if exported_root(export_file) != fingerprint:
            ok, out = remote.run(
                script("ca-root-key-export.sh.j2", key=f"{path}/{ROOT_KEY}"), stdin=recipient
            )
            if not ok or "BEGIN PGP MESSAGE" not in out.stdout:
                return remote.fail(f"encrypting the root key failed: {out.stderr}")
            _write(export_file, f"# root {fingerprint}\n{out.stdout}\n")
            remote.log(f"the root key, encrypted, is kept in {export_file}")
    # Removed, never followed: `rm -f` takes a link itself, not what it points at.
    ok, out = remote.run(raw("rm -f -- {copies}", copies=copies))
    return ok or remote.fail(f"removing the root key failed: {out.stderr}")


def _write(file: str, text: str) -> None:
    """`text` in `file` (0600), replaced in one rename and flushed before the key goes."""
    path = Path(file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
