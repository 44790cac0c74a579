"""Replication of the complete CA state from the primary to a backup cert-manager.

The state (config, certs, secrets, db) is copied on the primary and encrypted there with
GnuPG (authenticated encryption: a ciphertext modified on its way does not decrypt) to a key
pair that the backup makes for this one transfer in a private directory under /run and
removes after it. The controller carries only the public key and the ciphertext, in memory;
the backup checks the transfer's SHA-256 and the root's fingerprint before it swaps the new
state in. step-ca on the primary is paused for the copy (see `templates/macros/step_ca_paused.sh.j2`);
the backup's step-ca stays stopped.
"""

from __future__ import annotations

from io import BytesIO

from pyinfra import host
from pyinfra.api import OperationError, QuoteString, StringCommand, operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.ca import CAFiles, CAState
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import STEP_CA_PAUSE
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import PinnedRoot, refuse_other, root_fingerprint
from etcd_step_pki.templates.scripts import script

TRANSFER = "/run/etcd-step-pki/transfer"


def keypair(directory: str) -> StringCommand:
    """The backup's one-time transfer key pair, made in `directory`: prints its public key."""
    return script("ca-transfer-keypair.sh.j2", directory=directory)


def pack(directory: str, path: str) -> StringCommand:
    """The primary's copy of the CA state (step-ca paused), encrypted to the key on stdin."""
    return script(
        "ca-transfer-pack.sh.j2",
        directory=directory,
        path=path,
        pause=STEP_CA_PAUSE,
    )


def unpack(directory: str, digest: str, path: str, fingerprint: str) -> StringCommand:
    """The backup's check, decryption and swap of the transferred state."""
    return script(
        "ca-transfer-unpack.sh.j2",
        directory=directory,
        digest=digest,
        path=path,
        fingerprint=fingerprint,
    )


@operation()
def replicated(*, primary: str, path: str, pin: PinnedRoot | None = None) -> Commands:
    """
    Keep this backup cert-manager's CA state identical to the primary's.

    + primary: the inventory name of the primary cert-manager
    + path: the CA's `$STEPPATH` (the same on both)
    + pin: the root the state must have (operations/roots.py); None: the primary's
    """
    source = host.state.inventory.get_host(primary)
    wanted = memo.get_fact(source, CAFiles, path=path)
    if not wanted:
        if host.state.is_executing:
            raise OperationError(f"{primary} has no CA state at {path} to replicate")
        yield StringCommand("true")  # replicate once the primary's CA exists
        return
    if memo.get_fact(host, CAFiles, path=path) == wanted:
        host.noop(f"{path} is identical to {primary}'s")
        return
    root = memo.get_fact(source, CAState, path=path)["root"]
    refuse_other(root, pin, f"the CA state on {primary}")
    yield RunTimeStep(_transfer, primary, path, root_fingerprint(root))


def _transfer(state: State, backup: Remote, primary: str, path: str, fingerprint: str) -> bool:
    """Run time: a one-time key pair on the backup, the state encrypted to it on the primary,
    the ciphertext across."""
    ok, out = backup.run(keypair(TRANSFER))
    if not ok:
        return backup.fail(f"making the transfer key failed: {out.stderr}")
    public = "\n".join(out.stdout_lines) + "\n"
    source = Remote.of(state, primary, f"to replicate the CA state to {backup.name}")
    sending = f"{TRANSFER}-{backup.name}"
    try:
        ok, out = source.run(pack(sending, path), stdin=public)
        if not ok:
            return source.fail(f"packing the CA state for {backup.name} failed: {out.stderr}")
        digest = out.stdout.strip()
        # Shown under the primary, where step-ca paused for the copy.
        source.log(f"packed and encrypted the CA state for {backup.name} (step-ca paused)")
        buffer = BytesIO()
        if not source.get(f"{sending}/state.gpg", buffer):
            return source.fail(f"fetching the encrypted state for {backup.name} failed")
        buffer.seek(0)
        if not backup.put(buffer, f"{TRANSFER}/state.gpg"):
            return backup.fail(f"receiving the encrypted state from {primary} failed")
    finally:
        source.run(StringCommand("rm", "-rf", QuoteString(sending)))
    ok, out = backup.run(unpack(TRANSFER, digest, path, fingerprint))
    if not ok:
        return backup.fail(f"unpacking the CA state failed: {out.stderr}")
    backup.log(f"CA state replicated from {primary}")
    return True
