"""release_binaries: install only what differs, verify before unpacking, clear errors."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pyinfra.api import FileUploadCommand, OperationError, OperationValueError

from etcd_step_pki.facts.binaries import Binaries
from etcd_step_pki.operations.binaries import Artifact, Replaced, release_binaries
from tests.unit.fakes import FakeHost, on_host, raw, run_op

SUM = "b" * 64


def _artifact(binary: str, version: str = "0.30.2", source: str = "upstream", **kw) -> Artifact:
    return Artifact(binary, version, {"amd64": SUM}, source, kw.get("mirror"), kw.get("local"))


def _host(versions: dict, machine: str = "x86_64") -> FakeHost:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine)
    return FakeHost({Binaries: {"arch": arch, "machine": machine, "versions": versions}})


def test_nothing_to_do_when_versions_match() -> None:
    host = _host({"step": "0.30.2", "step-ca": "0.30.2"})
    assert run_op(release_binaries, host, [_artifact("step"), _artifact("step-ca")]) == []
    assert host.noops == ["step 0.30.2 is installed, step-ca 0.30.2 is installed"]


def test_only_the_outdated_binary_is_installed_from_upstream() -> None:
    host = _host({"step": "0.30.1", "step-ca": "0.30.2"})
    commands = raw(run_op(release_binaries, host, [_artifact("step"), _artifact("step-ca")]))
    assert len(commands) == 2
    assert commands[0] == (
        "install -d -m 0700 /var/lib/etcd-step-pki/staging && "
        "curl -fsSL --retry 3 --connect-timeout 15 -o "
        "/var/lib/etcd-step-pki/staging/step_linux_0.30.2_amd64.tar.gz "
        "https://github.com/smallstep/cli/releases/download/v0.30.2/step_linux_0.30.2_amd64.tar.gz"
    )
    install = shlex.split(commands[1])[2]  # bash -c <script> <template>
    # The checksum is checked before tar runs, and the binary is swapped in atomically.
    assert install.index("sha256sum -c") < install.index("tar --no-same-owner -m -xzf")
    assert "binaries=(step)\n" in install
    assert (
        'for b in "${binaries[@]}"; do\n    mv -f "$bin_dir/$b.new" "$bin_dir/$b"\ndone' in install
    )
    # What was installed is recorded, so the next run need not start the binary to know.
    assert install.endswith(
        "printf '%s %s\\n' 0.30.2 \"$(stat -c '%s %Y' \"$bin_dir\"/step)\" \\\n"
        "    > /var/lib/etcd-step-pki/releases/step\n"
    )
    assert "step-ca" not in install


def test_local_source_uploads_from_the_controller(tmp_path: Path) -> None:
    archive = tmp_path / "step_linux_0.30.2_amd64.tar.gz"
    archive.write_bytes(b"archive")
    host = _host({"step": None})
    commands = run_op(
        release_binaries, host, [_artifact("step", source="local", local=str(tmp_path))]
    )
    # Staged in a directory only root can reach.
    assert commands[0].get_raw_value() == "install -d -m 0700 /var/lib/etcd-step-pki/staging"
    assert isinstance(commands[1], FileUploadCommand)
    assert commands[1].src == str(archive)
    assert commands[1].dest == "/var/lib/etcd-step-pki/staging/step_linux_0.30.2_amd64.tar.gz"


def test_missing_local_archive_is_an_error(tmp_path: Path) -> None:
    host = _host({"step": None})
    with pytest.raises(OperationValueError, match="does not exist on the controller"):
        run_op(release_binaries, host, [_artifact("step", source="local", local=str(tmp_path))])


def test_unknown_architecture_is_an_error() -> None:
    host = _host({"step": None}, machine="riscv64")
    with pytest.raises(OperationError, match="unknown architecture 'riscv64'"):
        run_op(release_binaries, host, [_artifact("step")])


def test_missing_checksum_for_the_host_arch_is_an_error() -> None:
    host = _host({"step": None}, machine="aarch64")
    with pytest.raises(OperationValueError, match="set `step_checksums` for arm64"):
        run_op(release_binaries, host, [_artifact("step")])


def test_the_fact_parses_versions_and_missing_binaries() -> None:
    fact = Binaries()
    parsed = fact.process(
        [
            "aarch64",
            "step Smallstep CLI/0.30.2 (linux/arm64)",
            "step-ca Smallstep CA/0.30.2 (linux/arm64)",
            "etcd -",
        ]
    )
    assert parsed == {
        "arch": "arm64",
        "machine": "aarch64",
        "versions": {"step": "0.30.2", "step-ca": "0.30.2", "etcd": None},
    }
    # The fact runs a script (`bash -c <script> <template>`): each name one word in it.
    script = shlex.split(fact.command("/opt/bin", ["step", "we ird"]).get_raw_value())[2]
    assert "for b in step 'we ird'; do" in script


class _Ran:
    """An operation of the run that changed something on the host (an `OperationMeta`)."""

    _hash = "op"

    def did_change(self) -> bool:
        return True


def test_a_restart_waits_on_its_own_binary_not_on_others_of_the_same_operation() -> None:
    """One operation installs step and etcd: a new step alone restarts no etcd member."""
    host = _host({"step": "0.30.1", "etcd": "3.5.30"})
    run_op(release_binaries, host, [_artifact("step"), _artifact("etcd", "3.5.30")])
    with on_host(host):
        assert Replaced(_Ran(), "step").did_change()  # type: ignore[arg-type]
        assert not Replaced(_Ran(), "etcd").did_change()  # type: ignore[arg-type]
        assert not Replaced(_Ran(), "etcdctl").did_change()  # type: ignore[arg-type]
    upgrade = _host({"step": "0.30.2", "etcd": "3.5.29"})
    run_op(release_binaries, upgrade, [_artifact("step"), _artifact("etcd", "3.5.30")])
    with on_host(upgrade):
        assert Replaced(_Ran(), "etcd").did_change()  # type: ignore[arg-type]
        assert not Replaced(_Ran(), "step").did_change()  # type: ignore[arg-type]
