"""The replication transfer's own shell steps, run here with GnuPG: the state encrypted to the
backup's one-time key unpacks; a ciphertext modified on its way (its checksum made to match)
does not decrypt, and nothing is unpacked."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from etcd_step_pki.operations import replication
from etcd_step_pki.operations.roots import root_fingerprint
from tests.unit.test_certificates import _ca, _pem


def _sh(command: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], input=stdin, capture_output=True, text=True)


def _encrypted_state(tmp_path: Path, root_pem: str) -> tuple[Path, str]:
    """A CA state directory, encrypted as the primary does (less the pause of step-ca) to a
    key pair made by the backup's own step; returns the backup's directory and the key's
    fingerprint."""
    state = tmp_path / "primary" / "step-ca"
    (state / "certs").mkdir(parents=True)
    (state / "certs" / "root_ca.crt").write_text(root_pem)
    backup = tmp_path / "backup-transfer"
    made = _sh(replication.keypair(str(backup)).get_raw_value())
    assert made.returncode == 0 and "BEGIN PGP PUBLIC KEY BLOCK" in made.stdout, made.stderr
    sending = tmp_path / "sending"
    sending.mkdir(mode=0o700)
    (sending / "gnupg").mkdir(mode=0o700)
    g = f"gpg --homedir {sending}/gnupg --batch --quiet --no-tty"
    packed = _sh(
        f"set -e; {g} --import 2>/dev/null; r=$({g} --with-colons --list-keys | awk -F:"
        f" '$1 == \"fpr\" {{ print $10; exit }}'); tar -C {state} -cpzf {sending}/state.tgz .;"
        f' {g} --trust-model always --recipient "$r" --output {backup}/state.gpg'
        f" --encrypt {sending}/state.tgz",
        stdin=made.stdout,
    )
    assert packed.returncode == 0, packed.stderr
    return backup, root_fingerprint(root_pem)


def _unpack(backup: Path, target: Path, fingerprint: str) -> subprocess.CompletedProcess[str]:
    digest = hashlib.sha256((backup / "state.gpg").read_bytes()).hexdigest()
    command = replication.unpack(str(backup), digest, str(target), fingerprint)
    return _sh(command.get_raw_value())


def test_the_state_encrypted_to_the_backups_key_unpacks(tmp_path: Path) -> None:
    root = _pem(_ca("Root")[0])
    backup, fingerprint = _encrypted_state(tmp_path, root)
    target = tmp_path / "step-ca"
    done = _unpack(backup, target, fingerprint)
    assert done.returncode == 0, done.stderr
    assert (target / "certs" / "root_ca.crt").read_text() == root
    assert not backup.exists()  # the one-time key went with the transfer


def test_a_modified_ciphertext_does_not_decrypt_and_nothing_is_unpacked(tmp_path: Path) -> None:
    backup, fingerprint = _encrypted_state(tmp_path, _pem(_ca("Root")[0]))
    data = bytearray((backup / "state.gpg").read_bytes())
    data[-40] ^= 0x01
    (backup / "state.gpg").write_bytes(bytes(data))
    target = tmp_path / "step-ca"
    failed = _unpack(backup, target, fingerprint)
    assert failed.returncode != 0
    assert "does not decrypt" in failed.stderr
    assert not target.exists() and not Path(f"{target}.incoming").exists()
