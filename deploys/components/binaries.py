"""The release binaries of a run: installed by the first component that needs them on a host,
in one operation, which a later component of the same run reuses rather than adding its own."""

from __future__ import annotations

from dataclasses import dataclass

from pyinfra import host
from pyinfra.api.operation import OperationMeta

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.settings import Settings
from etcd_step_pki.facts import memo
from etcd_step_pki.facts.binaries import Binaries
from etcd_step_pki.operations import Change
from etcd_step_pki.operations.binaries import Artifact, Replaced, release_binaries
from etcd_step_pki.operations.etcd.releases import release_change_allowed


@dataclass(frozen=True)
class Installed:
    """The operation that installed a host's binaries in this run, and which it installs."""

    operation: OperationMeta
    binaries: frozenset[str]

    def change_of(self, binary: str) -> Change | None:
        """What a restart of `binary`'s daemon waits on; None when another operation
        installs it."""
        return Replaced(self.operation, binary) if binary in self.binaries else None


_installed: dict[tuple[int, str], Installed] = {}


def run_binaries(settings: Settings, *, everything: bool = False) -> Installed:
    """step on every host that has certificates or a CA, once a host and a run (a later
    component gets the same operation back). With `everything` (a run that deploys the
    whole system), step-ca on the cert-managers and etcd's archive where etcd is needed come
    in the same operation: one wave of installs, instead of three, each waiting for the
    slowest host."""
    key = (id(host.state), settings.host)
    if key not in _installed:
        if not any(state == id(host.state) for state, _ in _installed):
            _installed.clear()
        artifacts = [settings.step]
        if everything and settings.is_cert_manager:
            artifacts.append(settings.step_ca)
        if everything and settings.holds_certificates and settings.etcd.install_from == "archive":
            artifacts.append(settings.etcd.artifact)
            etcd_release_checked(settings, artifacts)
        _installed[key] = Installed(
            release_binaries(
                name="Install step, step-ca and etcd" if everything else "Install step",
                artifacts=artifacts,
                bin_dir=settings.bin_dir,
                # What a member whose upgrade does not start goes back to.
                keep_previous=["etcd"] if settings.member_of_any else [],
            ),
            frozenset(a.binary for a in artifacts),
        )
    return _installed[key]


def etcd_release_checked(
    settings: Settings, artifacts: list[Artifact], *, downgrading: bool = False
) -> None:
    """Before etcd's binaries are replaced on a member: the move to another etcd release
    refused on every member where etcd's guides do not allow it (operations/etcd/releases).
    The installed release is read with the install's own fact: no round trip more."""
    if not settings.is_member:
        return
    found = memo.get_fact(
        host, Binaries, bin_dir=settings.bin_dir, binaries=[a.binary for a in artifacts]
    )
    release_change_allowed(
        name="etcd release change allowed",
        member=arguments.member(settings),
        installed=found["versions"].get("etcd"),
        target=settings.etcd.artifact.version,
        bin_dir=settings.bin_dir,
        etcd_user=settings.etcd_user,
        downgrading=downgrading,
    )


def step_binary(settings: Settings) -> OperationMeta:
    """step, on every host that has certificates or a CA (see `run_binaries`)."""
    return run_binaries(settings).operation


def installed_with_step(settings: Settings, binary: str) -> Change | None:
    """What a restart waits on when `binary` came with step's operation in this run; None
    when no operation of the run installs step on this host, or not `binary` with it."""
    found = _installed.get((id(host.state), settings.host))
    return found.change_of(binary) if found else None
