"""Replication of the complete CA state from the primary to a backup cert-manager.

The state (config, certs, secrets, db) is packed on the primary and encrypted there for the
one backup it goes to: a random AES-256 key, wrapped with an RSA-3072 key pair that the
backup makes for this transfer and keeps in tmpfs. The controller carries only ciphertext,
in memory; the backup checks the transfer's SHA-256 and the root's fingerprint before it
swaps the new state in. step-ca on the primary is paused for the copy (see
`operations.ca.PAUSE_STEP_CA`); the backup's step-ca stays stopped.
"""

from __future__ import annotations

from io import BytesIO

from pyinfra import host
from pyinfra.api import OperationError, operation
from pyinfra.api.state import State

from facts.ca import CAFiles, CAState
from facts.shell import cleanup_on_exit, script
from operations import Commands
from operations.ca import PAUSE_STEP_CA, RESUME_STEP_CA
from operations.remote import Remote, RunTimeStep
from operations.roots import PinnedRoot, refuse_other, root_fingerprint

TRANSFER = "/run/etcd-step-pki/transfer"

_KEYPAIR = (
    'set -e; umask 077; d={d}; rm -rf "$d"; install -d -m 0700 "$d";'
    ' openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$d/key.pem" 2>/dev/null;'
    ' openssl pkey -in "$d/key.pem" -pubout'
)

_PACK = (
    'set -e; umask 077; d={d}; install -d -m 0700 "$d"; '
    + cleanup_on_exit('rm -f "$d/k"')
    + ' cat > "$d/backup.pub";'
    # A text key: `-pass file:` reads a line, and random bytes may start with a newline.
    ' openssl rand -hex 32 > "$d/k";'
    ' openssl pkeyutl -encrypt -pubin -inkey "$d/backup.pub" -pkeyopt rsa_padding_mode:oaep'
    ' -pkeyopt rsa_oaep_md:sha256 -in "$d/k" -out "$d/k.enc";'
    + PAUSE_STEP_CA
    + ' tar -C {path} -cpzf - . | openssl enc -aes-256-cbc -pbkdf2 -salt -pass file:"$d/k"'
    ' -out "$d/state.enc"' + RESUME_STEP_CA + ' sha256sum "$d/state.enc" | cut -c1-64'
)

_UNPACK = (
    "set -e; umask 077; d={d}; "
    + cleanup_on_exit('rm -rf "$d"')
    + ' printf "%s  %s\\n" {digest} "$d/state.enc" | sha256sum -c --status || {{'
    ' echo "the transferred CA state is damaged (checksum)" >&2; exit 1; }};'
    ' openssl pkeyutl -decrypt -inkey "$d/key.pem" -pkeyopt rsa_padding_mode:oaep'
    ' -pkeyopt rsa_oaep_md:sha256 -in "$d/k.enc" -out "$d/k";'
    " rm -rf {path}.incoming; install -d -m 0700 {path}.incoming;"
    ' openssl enc -d -aes-256-cbc -pbkdf2 -pass file:"$d/k" -in "$d/state.enc"'
    " | tar -C {path}.incoming -xpzf -;"
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
    """Run time: key pair on the backup, encrypted pack on the primary, ciphertext across."""
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
        for name in ("k.enc", "state.enc"):
            buffer = BytesIO()
            if not source.get(f"{sending}/{name}", buffer):
                return source.fail(f"fetching {name} for {backup.name} failed")
            buffer.seek(0)
            if not backup.put(buffer, f"{TRANSFER}/{name}"):
                return backup.fail(f"receiving {name} from {primary} failed")
    finally:
        source.run(script("rm -rf {d}", d=sending))
    ok, out = backup.run(
        script(_UNPACK, d=TRANSFER, digest=digest, path=path, fingerprint=fingerprint)
    )
    if not ok:
        return backup.fail(f"unpacking the CA state failed: {out.stderr}")
    backup.log(f"CA state replicated from {primary}")
    return True
