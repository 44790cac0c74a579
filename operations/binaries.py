"""Install binaries from release archives, checked against a pinned SHA-256 before unpacking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, OperationValueError, operation
from pyinfra.api.operation import OperationMeta

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.binaries import RELEASES, Binaries
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands
from etcd_step_pki.templates.scripts import script as run_script

UPSTREAM_URLS = {
    "step": "https://github.com/smallstep/cli/releases/download/v{version}/{file}",
    "step-ca": "https://github.com/smallstep/certificates/releases/download/v{version}/{file}",
    "etcd": "https://github.com/etcd-io/etcd/releases/download/v{version}/{file}",
}
# Release file names and the binaries each archive provides.
ARCHIVES = {
    "step": ("step_linux_{version}_{arch}.tar.gz", ("step",)),
    "step-ca": ("step-ca_linux_{version}_{arch}.tar.gz", ("step-ca",)),
    "etcd": ("etcd-v{version}-linux-{arch}.tar.gz", ("etcd", "etcdctl", "etcdutl")),
}


@dataclass(frozen=True)
class Artifact:
    """One release archive of one binary: where it comes from and its checksum per arch.

    `source` is `upstream` (the release URL), `mirror` (`mirror_url`/<file>) or `local`
    (a file in `local_dir` on the controller, uploaded)."""

    binary: str
    version: str
    checksums: dict[str, str]
    source: str = "upstream"
    mirror_url: str | None = None
    local_dir: str | None = None

    @property
    def binaries(self) -> tuple[str, ...]:
        """The binaries installed from the archive; the first one tells the version."""
        return ARCHIVES[self.binary][1]

    def file_name(self, arch: str) -> str:
        return ARCHIVES[self.binary][0].format(version=self.version, arch=arch)

    def url(self, arch: str) -> str:
        name = self.file_name(arch)
        if self.source == "mirror":
            return f"{(self.mirror_url or '').rstrip('/')}/{name}"
        return UPSTREAM_URLS[self.binary].format(version=self.version, file=name)

    def local_path(self, arch: str) -> str:
        return f"{(self.local_dir or '').rstrip('/')}/{self.file_name(arch)}"


# Archives are staged where only root can reach them (not a world-writable directory, where a
# predictable name could be taken over first).
STAGING_DIR = "/var/lib/etcd-step-pki/staging"


def _install_commands(
    artifact: Artifact, arch: str, bin_dir: str, keep_previous: Sequence[str]
) -> Commands:
    digest = artifact.checksums.get(arch)
    if digest is None:
        raise OperationValueError(
            f"no SHA-256 for {artifact.file_name(arch)}: set "
            f"`{artifact.binary.replace('-', '_')}_checksums` for {arch}"
        )
    name = artifact.file_name(arch)
    staged = f"{STAGING_DIR}/{name}"
    if artifact.source == "local":
        local = Path(artifact.local_path(arch))
        if not local.is_file():
            raise OperationValueError(f"{local} does not exist on the controller")
        yield script("install -d -m 0700 {d}", d=STAGING_DIR)
        yield FileUploadCommand(str(local), staged)
    else:
        yield script(
            "install -d -m 0700 {d} && curl -fsSL --retry 3 --connect-timeout 15 -o {staged} {url}",
            d=STAGING_DIR,
            staged=staged,
            url=artifact.url(arch),
        )
    # Verify, unpack, replace atomically, record, clean up (binaries-install.sh.j2).
    yield run_script(
        "binaries-install.sh.j2",
        name=name,
        archive=staged,
        sha256=digest,
        binaries=list(artifact.binaries),
        bin_dir=bin_dir.rstrip("/"),
        releases=RELEASES,
        version=artifact.version,
        first=artifact.binaries[0],
        kept=[b for b in artifact.binaries if b in keep_previous],
    )


@operation()
def release_binaries(
    artifacts: Sequence[Artifact], *, bin_dir: str = "/opt/bin", keep_previous: Sequence[str] = ()
) -> Commands:
    """
    Install each binary from its release archive unless that version is installed already.

    + artifacts: the archives (binary, version, checksums, source) to install
    + bin_dir: where the binaries go
    + keep_previous: binaries whose replaced version is kept as `<binary>.previous` (for a
      rollback)

    The archive is downloaded on the host (upstream or mirror URL) or uploaded from the
    controller (air-gapped sites), its SHA-256 checked before anything is unpacked, and the
    binary replaced atomically. A wrong checksum leaves the installed binary untouched.
    """
    info = memo.get_fact(host, Binaries, bin_dir=bin_dir, binaries=[a.binary for a in artifacts])
    arch = info["arch"]
    if arch is None:
        raise OperationError(f"unknown architecture {info['machine']!r}: only amd64 and arm64")
    current = info["versions"]
    outdated = [a for a in artifacts if current.get(a.binary) != a.version]
    if host.state.is_executing:
        _replaced[(id(host.state), host.name, host.current_op_hash)] = {
            b for a in outdated for b in a.binaries
        }
    if not outdated:
        host.noop(", ".join(f"{a.binary} {a.version} is installed" for a in artifacts))
        return
    for artifact in outdated:
        yield from _install_commands(artifact, arch, bin_dir, keep_previous)


# The binaries each `release_binaries` replaced on each host, recorded when it ran.
_replaced: dict[tuple[int, str, str | None], set[str]] = {}


@dataclass(frozen=True)
class Replaced:
    """The part of a `release_binaries` operation that replaced `binary`: a restart of the
    daemon waits on its own binary, not on the others installed by the same operation."""

    install: OperationMeta
    binary: str

    def did_change(self) -> bool:
        key = (id(host.state), host.name, self.install._hash)
        return self.install.did_change() and self.binary in _replaced.get(key, set())
