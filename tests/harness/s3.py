"""A real S3-compatible endpoint for tests (moto's server mode) and GnuPG keys made for them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "etcd-step-pki-test",
    "AWS_SECRET_ACCESS_KEY": "etcd-step-pki-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[str]:
    """moto_server on 127.0.0.1; yields its endpoint URL and always stops it."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass(frozen=True)
class GpgKey:
    """A GnuPG key pair in armored files, and the home that holds it."""

    public: Path
    private: Path
    home: Path

    def sign(self, data: bytes) -> bytes:
        """A detached signature of `data` by this key."""
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--quiet", "--pinentry-mode",
             "loopback", "--passphrase", "", "--detach-sign"],
            input=data, capture_output=True, check=True,
        ).stdout  # fmt: skip

    def decrypt(self, data: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--quiet", "--decrypt"],
            input=data,
            capture_output=True,
            check=False,
        )


def make_gpg_key(directory: Path, name: str) -> GpgKey:
    """A new key pair without passphrase (ed25519 + cv25519 encryption subkey)."""
    home = directory / f"{name}-gnupg"
    home.mkdir(mode=0o700, parents=True)
    env = {**os.environ, "GNUPGHOME": str(home)}
    uid = f"{name} <{name}@etcd-step-pki.test>"

    def gpg(*args: str) -> bytes:
        return subprocess.run(
            ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            env=env,
            capture_output=True,
            check=True,
        ).stdout

    gpg("--quick-gen-key", uid, "default", "default", "never")
    public = directory / f"{name}.pub.asc"
    private = directory / f"{name}.key.asc"
    public.write_bytes(gpg("--armor", "--export", uid))
    private.write_bytes(gpg("--armor", "--export-secret-keys", uid))
    private.chmod(0o600)
    return GpgKey(public, private, home)


BUCKET = "etcd-pki-backups"


def boto_args() -> dict[str, str]:
    """boto3 client arguments for the test S3 server."""
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def latest_object(body: bytes) -> str:
    """The backup `latest` points at: named in the manifest it holds (or, as backups made
    before manifests left it, its whole text)."""
    text = body.decode()
    named = [
        line.removeprefix("object ") for line in text.splitlines() if line.startswith("object ")
    ]
    return named[0] if named else text.strip()


def backup_data(s3: dict[str, str], keys: dict[str, GpgKey]) -> list[str]:
    """`--data` arguments of deploys/backup_ca.py against the test server."""
    return [
        "--data", f"ca_backup_bucket={BUCKET}",
        "--data", f"ca_backup_endpoint_url={s3['endpoint']}",
        "--data", f"ca_backup_recipient_key={keys['backup'].public}",
    ]  # fmt: skip


def restore_data(
    s3: dict[str, str], keys: dict[str, GpgKey], key: GpgKey | None = None
) -> list[str]:
    """`--data` arguments of deploys/restore_ca.py from the test server."""
    return [
        "--data", "ca_restore_from=s3",
        "--data", f"ca_backup_bucket={BUCKET}",
        "--data", f"ca_backup_endpoint_url={s3['endpoint']}",
        "--data", f"ca_restore_private_key={(key or keys['backup']).private}",
    ]  # fmt: skip
