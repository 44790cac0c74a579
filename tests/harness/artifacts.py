"""Upstream's release archives for the test hosts, in one directory (`artifact_dir`).

tests/hosts/upstream-release.sh builds each program from upstream's own module at the pinned
version (or, without Go, downloads upstream's archive and checks it against the pinned
SHA-256), cached per version; the sandbox reads them from one directory with one
`checksums.txt`, as an operator's mirror would hold.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from etcd_step_pki.deploys.settings import (
    DEFAULTS,
    ETCD_CHECKSUMS,
    STEP_CA_CHECKSUMS,
    STEP_CHECKSUMS,
)
from tests.harness.hosts import REPO

PINNED = {"step": STEP_CHECKSUMS, "step-ca": STEP_CA_CHECKSUMS, "etcd": ETCD_CHECKSUMS}
VERSIONS = {
    "step": str(DEFAULTS["step_version"]),
    "step-ca": str(DEFAULTS["step_ca_version"]),
    "etcd": str(DEFAULTS["etcd_version"]),
}

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


def go_binary() -> str | None:
    """The Go client upstream-release.sh builds with: on PATH, or in /usr/local/go."""
    found = shutil.which("go")
    if found is None and os.access("/usr/local/go/bin/go", os.X_OK):
        found = "/usr/local/go/bin/go"
    return found


def upstream(program: str, version: str | None = None) -> Path:
    """The directory holding upstream's linux/amd64 archive of `program` (step, step-ca or
    etcd) at `version` (default: the deploys' default) and its checksums file."""
    version = version or VERSIONS[program]
    pinned = PINNED[program].get(version, {}).get("amd64", "")
    return build("upstream-release.sh", program, version, *([pinned] if pinned else []))


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


# Another release of each Smallstep program than the deploys' default: upgrades and version
# changes are tested with upstream's own older releases.
OTHER_RELEASES = {"step": "0.30.2", "step-ca": "0.30.1"}


def other_release(program: str, target: Path) -> tuple[str, str]:
    """Link upstream's archive of OTHER_RELEASES[program] into `target`; return its version
    and SHA-256 (not in the pinned table: a run names it in `<program>_checksums`)."""
    version = OTHER_RELEASES[program]
    directory = upstream(program, version)
    archive = next(directory.glob("*.tar.gz"))
    link = target / archive.name
    if not link.exists():
        link.symlink_to(archive.resolve())
    return version, hashlib.sha256(archive.read_bytes()).hexdigest()
