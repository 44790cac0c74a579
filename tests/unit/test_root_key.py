"""The root key offline (operations/root_key.py): exported once, encrypted, then removed from
every disk of a cert-manager; a rotation brings it back for its step alone."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import pytest
from pyinfra.api import OperationError
from pyinfra.facts.files import FindFiles

from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.operations import root_key
from etcd_step_pki.operations.remote import RunTimeStep
from etcd_step_pki.operations.roots import root_fingerprint
from etcd_step_pki.operations.rotation import intermediate_rotated
from tests.unit.fakes import FakeHost, FakeRemote, run_op
from tests.unit.test_day2_operations import NOW, _ca_host

PATH = "/etc/step-ca"
KEY = f"{PATH}/secrets/root_ca_key"
PUBLIC = "-----BEGIN PGP PUBLIC KEY BLOCK-----\nx\n-----END PGP PUBLIC KEY BLOCK-----\n"
PRIVATE = "-----BEGIN PGP PRIVATE KEY BLOCK-----\ny\n-----END PGP PRIVATE KEY BLOCK-----\n"
MESSAGE = "-----BEGIN PGP MESSAGE-----\nz\n-----END PGP MESSAGE-----\n"


def _host(files: list[str], config: dict | None = None) -> FakeHost:
    fake = _ca_host(NOW - dt.timedelta(days=30))
    fake.facts[CAState]["config"] = config
    fake.facts[FindFiles] = files
    return fake


def test_every_copy_of_the_root_key_goes_after_the_export(tmp_path: Path) -> None:
    export = tmp_path / "prod.k8s.root-key.gpg"
    copies = [KEY, f"{PATH}.before-restore-20261201120000/secrets/root_ca_key"]
    # Another root's key file elsewhere under the parent is not this CA's.
    found = [*copies, "/etc/other/secrets/root_ca_key"]
    (step,) = run_op(root_key.root_key_offline, _host(found, {}), PATH, export_file=str(export),
                     recipient_key=PUBLIC)  # fmt: skip
    assert isinstance(step, RunTimeStep)
    *_, recipient, removed = step.args
    assert recipient == PUBLIC and removed == sorted(copies)


def test_nothing_to_do_once_no_disk_holds_it(tmp_path: Path) -> None:
    fake = _host([], {})
    assert run_op(root_key.root_key_offline, fake, PATH, export_file=str(tmp_path / "k"),
                  recipient_key=PUBLIC) == []  # fmt: skip
    assert fake.noops == ["the root key is on no disk of this cert-manager"]


def test_a_new_cas_root_key_goes_in_the_run_that_makes_it(tmp_path: Path) -> None:
    (step,) = run_op(root_key.root_key_offline, _host([], None), PATH,
                     export_file=str(tmp_path / "k"), recipient_key=PUBLIC, primary=True)  # fmt: skip
    assert step.args[2] is None and step.args[-1] == [KEY]  # the root is read when made
    # A backup cert-manager without a CA state yet: it will get one without the root key.
    backup = _host([], None)
    assert run_op(root_key.root_key_offline, backup, PATH, export_file=str(tmp_path / "k"),
                  recipient_key=PUBLIC) == []  # fmt: skip
    assert backup.noops == ["no CA state here yet: it comes without the root key"]


def test_another_roots_export_is_never_overwritten(tmp_path: Path) -> None:
    export = tmp_path / "k"
    export.write_text(f"# root {'ab' * 32}\n{MESSAGE}")
    with pytest.raises(OperationError, match="holds the root key of another root"):
        run_op(root_key.root_key_offline, _host([KEY], {}), PATH, export_file=str(export),
               recipient_key=PUBLIC)  # fmt: skip


OFFLINE = _ca_host(NOW - dt.timedelta(days=30))
OFFLINE.facts[CAState]["files"] = {}  # no root key on the host


def _rotate_offline(offline: root_key.OfflineRoot | None) -> list:
    return run_op(intermediate_rotated, OFFLINE, path=PATH, issued_before=NOW.timestamp(),
                  duration="87600h", now=NOW.timestamp(), offline_root=offline)  # fmt: skip


def test_a_rotation_brings_the_offline_root_key_back_for_its_step(tmp_path: Path) -> None:
    export = tmp_path / "k"
    with pytest.raises(OperationError, match="ca_restore_private_key"):
        _rotate_offline(root_key.OfflineRoot(str(export)))
    with pytest.raises(OperationError, match="does not hold the key of this CA's root"):
        _rotate_offline(root_key.OfflineRoot(str(export), PRIVATE))
    root = OFFLINE.facts[CAState]["root"]
    export.write_text(f"# root {root_fingerprint(root)}\n{MESSAGE}")
    step, _changed = _rotate_offline(root_key.OfflineRoot(str(export), PRIVATE))
    command, secret = step.args
    assert secret == PRIVATE + MESSAGE
    text = shlex.split(command.get_raw_value())[2]
    assert '--ca-key "$root_key"' in text and 'root_key="$d/root_ca_key"' in text
    # Nothing secret in the script itself, and nothing of it in the operation's repr.
    assert "PRIVATE KEY BLOCK-----\ny" not in text and PRIVATE not in repr(
        root_key.OfflineRoot(str(export), PRIVATE)
    )


@pytest.mark.parametrize(
    "export_output", [(False, "", "gpg: no valid OpenPGP data"), (True, "", "")]
)
def test_a_failed_export_removes_no_copy_and_keeps_no_file(
    tmp_path: Path, export_output: tuple[bool, str, str]
) -> None:
    """The export fails, or prints no ciphertext: no key is removed and no file is kept; when
    it works, the ciphertext is kept first and the copies are removed as names (`rm -f --`)."""
    export = tmp_path / "prod.k8s.root-key.gpg"
    copies = [KEY, f"{PATH}.before-restore-20261201120000/secrets/root_ca_key"]
    fingerprint = "cd" * 32

    def answer(command: str, stdin: str | None) -> tuple[bool, str, str]:
        return export_output if stdin == PUBLIC else (True, "", "")

    remote = FakeRemote(answer)
    kept = root_key._kept_offline(None, remote, PATH, str(export), fingerprint, PUBLIC, copies)  # type: ignore[arg-type]
    assert not kept and remote.failures and not export.exists()
    assert not [c for c in remote.commands if c.startswith("rm ")]
    remote = FakeRemote(lambda command, stdin: (True, MESSAGE, "") if stdin else (True, "", ""))
    assert root_key._kept_offline(None, remote, PATH, str(export), fingerprint, PUBLIC, copies)  # type: ignore[arg-type]
    assert export.read_text() == f"# root {fingerprint}\n{MESSAGE}"
    assert oct(export.stat().st_mode & 0o777) == "0o600"
    assert remote.commands[-1] == "rm -f -- " + " ".join(shlex.quote(c) for c in copies)
