"""Replication of the complete CA state from the primary to a backup cert-manager.

The state (config, certs, secrets, db) is copied on the primary and encrypted there with
GnuPG (authenticated encryption: a ciphertext modified on its way does not decrypt) to a key
pair that the backup makes for this one transfer in a private directory under /run and
removes after it. The controller carries only the public key and the ciphertext, in memory;
the backup checks the transfer's SHA-256 and the root's fingerprint before it swaps the new
state in. step-ca on the primary is paused for the copy (see `operations.ca.PAUSE_STEP_CA`);
the backup's step-ca stays stopped.
"""

from __future__ import annotations

from io import BytesIO

from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.api.state import State

from etcd_step_pki.facts.ca import CAFiles, CAState
from etcd_step_pki.facts.shell import cleanup_on_exit, script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import PAUSE_STEP_CA, RESUME_STEP_CA
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.operations.roots import PinnedRoot, refuse_other, root_fingerprint

TRANSFER = "/run/etcd-step-pki/transfer"

# GnuPG in a private home of its own, never the host's keyrings.
_GPG = ' g="gpg --homedir $d/gnupg --batch --quiet --no-tty --pinentry-mode loopback";'

_KEYPAIR = (
    'set -e; umask 077; d={d}; rm -rf "$d"; install -d -m 0700 "$d" "$d/gnupg";'
    + _GPG
    + " $g --passphrase '' --quick-gen-key 'etcd-step-pki transfer' future-default default 1d"
    " 2>/dev/null; $g --armor --export"
)

_PACK = (
    'set -e; umask 077; d={d}; rm -rf "$d"; install -d -m 0700 "$d" "$d/gnupg"; '
    + cleanup_on_exit('rm -rf "$d/state.tgz" "$d/gnupg"')
    + _GPG
    + " $g --import 2>/dev/null;"
    " r=$($g --with-colons --list-keys | awk -F: '$1 == \"fpr\" {{ print $10; exit }}');"
    # The copy, step-ca paused, into this private tmpfs directory; encrypted once resumed.
    + PAUSE_STEP_CA
    + ' tar -C {path} -cpzf "$d/state.tgz" .'
    + RESUME_STEP_CA
    + ' $g --trust-model always --recipient "$r" --output "$d/state.gpg" --encrypt "$d/state.tgz";'
    ' rm -f "$d/state.tgz"; sha256sum "$d/state.gpg" | cut -c1-64'
)

_UNPACK = (
    "set -e; umask 077; d={d}; "
    + cleanup_on_exit('rm -rf "$d"')
    + ' printf "%s  %s\\n" {digest} "$d/state.gpg" | sha256sum -c --status || {{'
    ' echo "the transferred CA state is damaged (checksum)" >&2; exit 1; }};'
    + _GPG
    # Decrypted whole before anything is unpacked: a ciphertext modified in transit fails
    # GnuPG's integrity check and is not used.
    + ' if ! $g --output "$d/state.tgz" --decrypt "$d/state.gpg" 2>"$d/err"; then'
    ' echo "the transferred CA state does not decrypt:" >&2; cat "$d/err" >&2; exit 1; fi;'
    " rm -rf {path}.incoming; install -d -m 0700 {path}.incoming;"
    ' tar -C {path}.incoming -xpzf "$d/state.tgz";'
    " fp=$(openssl x509 -in {path}.incoming/certs/root_ca.crt -outform DER | sha256sum | cut -c1-64);"
    ' if [ "$fp" != {fingerprint} ]; then rm -rf {path}.incoming;'
    ' echo "the replicated root fingerprint $fp is not the primary\'s" >&2; exit 1; fi;'
    " rm -rf {path}.previous; if [ -d {path} ]; then mv {path} {path}.previous; fi;"
    " mv {path}.incoming {path}; rm -rf {path}.previous"
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
    wanted = source.get_fact(CAFiles, path=path)
    if not wanted:
        if host.state.is_executing:
            raise OperationError(f"{primary} has no CA state at {path} to replicate")
        yield script("true  # replicate once the primary's CA exists")
        return
    if host.get_fact(CAFiles, path=path) == wanted:
        host.noop(f"{path} is identical to {primary}'s")
        return
    root = source.get_fact(CAState, path=path)["root"]
    refuse_other(root, pin, f"the CA state on {primary}")
    yield RunTimeStep(_transfer, primary, path, root_fingerprint(root))


def _transfer(state: State, backup: Remote, primary: str, path: str, fingerprint: str) -> bool:
    """Run time: a one-time key pair on the backup, the state encrypted to it on the primary,
    the ciphertext across."""
    ok, out = backup.run(script(_KEYPAIR, d=TRANSFER))
    if not ok:
        return backup.fail(f"making the transfer key failed: {out.stderr}")
    public = "\n".join(out.stdout_lines) + "\n"
    source = Remote.of(state, primary, f"to replicate the CA state to {backup.name}")
    sending = f"{TRANSFER}-{backup.name}"
    try:
        ok, out = source.run(script(_PACK, d=sending, path=path), stdin=public)
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
        source.run(script("rm -rf {d}", d=sending))
    ok, out = backup.run(
        script(_UNPACK, d=TRANSFER, digest=digest, path=path, fingerprint=fingerprint)
    )
    if not ok:
        return backup.fail(f"unpacking the CA state failed: {out.stderr}")
    backup.log(f"CA state replicated from {primary}")
    return True
