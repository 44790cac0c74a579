"""Replication of the complete CA state from the primary to a backup cert-manager.

The state (config, certs, secrets, db) is packed on the primary and encrypted there for the
one backup it goes to: a random AES-256 key, wrapped with an RSA-3072 key pair that the
backup makes for this transfer and keeps in tmpfs. The controller carries only ciphertext,
in memory; the backup checks the transfer's SHA-256 and the root's fingerprint before it
swaps the new state in. step-ca on the primary is paused for the copy (see
`operations.ca.PAUSE_STEP_CA`); the backup's step-ca stays stopped.
"""

from __future__ import annotations

from io import BytesIO, StringIO

from pyinfra import host, logger
from pyinfra.api import FunctionCommand, OperationError, operation
from pyinfra.api.host import Host
from pyinfra.api.state import State

from facts.ca import CAFiles, CAState
from facts.shell import script
from operations import Commands
from operations.ca import PAUSE_STEP_CA, RESUME_STEP_CA
from operations.certificates import root_fingerprint
from operations.failures import failed

TRANSFER = "/run/etcd-step-pki/transfer"

_KEYPAIR = (
    'set -e; umask 077; d={d}; rm -rf "$d"; install -d -m 0700 "$d";'
    ' openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$d/key.pem" 2>/dev/null;'
    ' openssl pkey -in "$d/key.pem" -pubout'
)

_PACK = (
    'set -e; umask 077; d={d}; install -d -m 0700 "$d"; trap \'rm -f "$d/k"\' EXIT;'
    # A text key: `-pass file:` reads a line, and random bytes may start with a newline.
    ' openssl rand -hex 32 > "$d/k";'
    ' openssl pkeyutl -encrypt -pubin -inkey "$d/backup.pub" -pkeyopt rsa_padding_mode:oaep'
    ' -pkeyopt rsa_oaep_md:sha256 -in "$d/k" -out "$d/k.enc";'
    + PAUSE_STEP_CA
    + ' tar -C {path} -cpzf - . | openssl enc -aes-256-cbc -pbkdf2 -salt -pass file:"$d/k"'
    ' -out "$d/state.enc"; rc=$?;' + RESUME_STEP_CA + ' sha256sum "$d/state.enc" | cut -c1-64'
)

_UNPACK = (
    "set -e; umask 077; d={d}; trap 'rm -rf \"$d\"' EXIT;"
    ' printf "%s  %s\\n" {digest} "$d/state.enc" | sha256sum -c --status || {{'
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
def replicated(*, primary: str, path: str) -> Commands:
    """
    Keep this backup cert-manager's CA state identical to the primary's.

    + primary: the inventory name of the primary cert-manager
    + path: the CA's `$STEPPATH` (the same on both)
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
    yield FunctionCommand(_transfer, (primary, path, root_fingerprint(root)), {})


def _transfer(state: State, host: Host, primary: str, path: str, fingerprint: str) -> bool:
    """Run time: key pair on the backup, encrypted pack on the primary, ciphertext across."""
    source = state.inventory.get_host(primary)
    ok, out = host.run_shell_command(script(_KEYPAIR, d=TRANSFER))
    if not ok:
        return failed(host, f"making the transfer key failed: {out.stderr}")
    public = "\n".join(out.stdout_lines) + "\n"
    sending = f"{TRANSFER}-{host.name}"
    ok, out = source.run_shell_command(script("install -d -m 0700 {d}", d=sending))
    if not ok or not source.put_file(StringIO(public), f"{sending}/backup.pub"):
        return failed(host, f"handing the transfer key to {primary} failed")
    try:
        ok, out = source.run_shell_command(script(_PACK, d=sending, path=path))
        if not ok:
            return failed(host, f"packing the CA state on {primary} failed: {out.stderr}")
        digest = out.stdout.strip()
        # Shown under the primary, where step-ca paused for the copy.
        source.log_styled(
            f"packed and encrypted the CA state for {host.name} (step-ca paused for the copy)",
            log_func=logger.info,
        )
        for name in ("k.enc", "state.enc"):
            buffer = BytesIO()
            if not source.get_file(f"{sending}/{name}", buffer):
                return failed(host, f"fetching {name} from {primary} failed")
            buffer.seek(0)
            if not host.put_file(buffer, f"{TRANSFER}/{name}"):
                return failed(host, f"sending {name} to {host.name} failed")
    finally:
        source.run_shell_command(script("rm -rf {d}", d=sending))
    ok, out = host.run_shell_command(
        script(_UNPACK, d=TRANSFER, digest=digest, path=path, fingerprint=fingerprint)
    )
    if not ok:
        return failed(host, f"unpacking the CA state failed: {out.stderr}")
    host.log_styled(f"CA state replicated from {primary}", log_func=logger.info)
    return True
