"""One directory of release archives for the sandbox's air-gapped source (`artifact_dir`).

The step/step-ca test builds and the etcd archive are built and cached apart; the sandbox
reads them from one directory with one `checksums.txt`, as an operator's mirror would hold.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
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
