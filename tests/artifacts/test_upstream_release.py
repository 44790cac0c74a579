"""tests/hosts/upstream-release.sh: etcd's archives as upstream lays them out and stamps them,
and the path of a machine without Go, which downloads upstream's archive and checks it
against the pinned SHA-256, as the deploys do (tried against a local HTTP server)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.artifacts import VERSIONS, go_binary, upstream
from tests.harness.hosts import REPO
from tests.harness.served import served

pytestmark = pytest.mark.artifacts

SCRIPT = REPO / "tests" / "hosts" / "upstream-release.sh"
ETCD = VERSIONS["etcd"]


def commits() -> dict[str, str]:
    """tests/hosts/etcd-commits.txt: version -> the short commit etcd's build stamps."""
    lines = (REPO / "tests" / "hosts" / "etcd-commits.txt").read_text().splitlines()
    return {f[0]: f[1] for f in (line.split() for line in lines) if f and f[0][0] != "#"}


@pytest.fixture(scope="module")
def etcd_unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = upstream("etcd")
    archive = directory / f"etcd-v{ETCD}-linux-amd64.tar.gz"
    digest, name = (directory / "SHA256SUMS").read_text().split()
    assert name == archive.name
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    target = tmp_path_factory.mktemp("etcd")
    with tarfile.open(archive) as tar:
        names = sorted(m.name for m in tar.getmembers() if not m.isdir())
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())
        tar.extractall(target, filter="data")
    top = f"etcd-v{ETCD}-linux-amd64"
    assert names == [
        f"{top}/{n}"
        for n in ("README-etcdctl.md", "README-etcdutl.md", "etcd", "etcdctl", "etcdutl")
    ]
    return target / top


def test_etcd_prints_what_upstreams_release_prints(etcd_unpacked: Path) -> None:
    out = subprocess.run(
        [str(etcd_unpacked / "etcd"), "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == f"etcd Version: {ETCD}"
    assert out[1] == f"Git SHA: {commits()[ETCD]}"
    assert out[3] == "Go OS/Arch: linux/amd64"
    for tool in ("etcdctl", "etcdutl"):
        version = subprocess.run(
            [str(etcd_unpacked / tool), "version"], capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]
        assert version == f"{tool} version: {ETCD}"


@pytest.mark.skipif(go_binary() is None, reason="no Go: the archives were downloaded")
@pytest.mark.parametrize(
    ("binary", "main"),
    [
        ("etcd", "go.etcd.io/etcd/server/v3"),
        ("etcdctl", "go.etcd.io/etcd/etcdctl/v3"),
        ("etcdutl", "go.etcd.io/etcd/etcdutl/v3"),
    ],
)
def test_etcd_binaries_are_upstreams_modules(etcd_unpacked: Path, binary: str, main: str) -> None:
    """Each binary names upstream's module at the release (no local replacement), every etcd
    module it links at that same release, static and -trimpath."""
    out = subprocess.run(
        [str(go_binary()), "version", "-m", str(etcd_unpacked / binary)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t")[1:] for line in out.splitlines()[1:]]
    assert ["path", main] in [r[:2] for r in rows]
    etcd_modules = {
        r[1]: r[2] for r in rows if r[0] in ("mod", "dep") and "go.etcd.io/etcd/" in r[1]
    }
    assert main in etcd_modules and set(etcd_modules.values()) == {f"v{ETCD}"}
    assert not [r for r in rows if r[0] == "=>"]
    settings = dict(r[1].split("=", 1) for r in rows if r[0] == "build" and "=" in r[1])
    assert settings["CGO_ENABLED"] == "0" and settings["-trimpath"] == "true"


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server laid out as upstream's release downloads."""
    root = tmp_path / "www"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with served(server):
        yield f"http://127.0.0.1:{server.server_address[1]}", root


def _download(url: str, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PKI_UPSTREAM_FROM": "download",
        "PKI_UPSTREAM_RELEASES_URL": url,
        "PKI_CACHE_DIR": str(cache),
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, check=False
    )


def test_without_go_the_archive_is_downloaded_and_checked(
    release_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, root = release_server
    built = upstream("step-ca")
    name = f"step-ca_linux_{VERSIONS['step-ca']}_amd64.tar.gz"
    published = root / "smallstep" / "certificates" / "releases" / "download"
    (published / f"v{VERSIONS['step-ca']}").mkdir(parents=True)
    shutil.copy(built / name, published / f"v{VERSIONS['step-ca']}" / name)
    digest = hashlib.sha256((built / name).read_bytes()).hexdigest()
    cache = tmp_path / "cache"

    wrong = _download(url, cache, "step-ca", VERSIONS["step-ca"], "0" * 64)
    assert wrong.returncode != 0
    assert f"checksum mismatch for {name}: expected {'0' * 64}, got {digest}" in wrong.stderr
    assert not list((cache / "upstream").glob("step-ca-*"))

    missing = _download(url, cache, "step-ca", VERSIONS["step-ca"])
    assert missing.returncode != 0 and "needs the archive's pinned SHA-256" in missing.stderr

    good = _download(url, cache, "step-ca", VERSIONS["step-ca"], digest)
    assert good.returncode == 0, good.stderr
    out = Path(good.stdout.strip().splitlines()[-1])
    assert (out / name).read_bytes() == (built / name).read_bytes()
    assert (out / "checksums.txt").read_text() == f"{digest}  {name}\n"
    # Cached: a second call downloads nothing (the server no longer has it).
    (published / f"v{VERSIONS['step-ca']}" / name).unlink()
    again = _download(url, cache, "step-ca", VERSIONS["step-ca"], digest)
    assert again.returncode == 0 and Path(again.stdout.strip().splitlines()[-1]) == out
