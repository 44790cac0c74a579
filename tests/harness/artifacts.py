"""One directory of release archives for the sandbox's air-gapped source (`artifact_dir`).

The step/step-ca test builds and the etcd archive are built and cached apart; the sandbox
reads them from one directory with one `checksums.txt`, as an operator's mirror would hold.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

from tests.harness.hosts import REPO

CACHE = Path(os.environ.get("PKI_CACHE_DIR", Path.home() / ".cache" / "etcd-step-pki"))


def build(script: str, *args: str) -> Path:
    """Run a cached build script of tests/hosts/ and return the directory it prints last."""
    out = subprocess.run(
        ["bash", str(REPO / "tests" / "hosts" / script), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tests/hosts/{script} failed:\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def combined(*directories: Path) -> Path:
    """A directory linking every archive of `directories`, with their checksums merged."""
    key = hashlib.sha256("\n".join(str(d.resolve()) for d in directories).encode()).hexdigest()
    target = CACHE / "sandbox-artifacts" / key[:16]
    target.mkdir(parents=True, exist_ok=True)
    sums = []
    for directory in directories:
        for archive in sorted(directory.glob("*.tar.gz")):
            link = target / archive.name
            if not link.exists():
                link.symlink_to(archive.resolve())
        for name in ("checksums.txt", "SHA256SUMS"):
            if (directory / name).exists():
                sums += [line for line in (directory / name).read_text().splitlines() if line]
    (target / "checksums.txt").write_text("\n".join(sums) + "\n")
    return target


def repack(artifacts: Path, target: Path, binary: str, version: str) -> str:
    """A release archive of `binary` (step or step-ca) in `target` that reports `version`:
    the 0.30.2 test build with its version string patched (same length), packed in upstream's
    layout. Returns its SHA-256. Upgrades are tested with it: Debian packages one version."""
    source = artifacts / f"{binary}_linux_0.30.2_amd64.tar.gz"
    out = target / f"{binary}_linux_{version}_amd64.tar.gz"
    with tarfile.open(source) as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            member.name = member.name.replace("0.30.2", version)
            if data is not None:
                if member.name.endswith(f"/{binary}") or member.name == binary:
                    data = data.replace(b"0.30.2", version.encode())
                member.size = len(data)
                dst.addfile(member, io.BytesIO(data))
            else:
                dst.addfile(member)
    return hashlib.sha256(out.read_bytes()).hexdigest()
