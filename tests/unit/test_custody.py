"""Superseded CA keys and states removed after their retention (operations/custody.py)."""

from __future__ import annotations

import datetime as dt

from pyinfra.facts.files import FindDirectories

from etcd_step_pki.facts.ca import CAFiles
from etcd_step_pki.operations.custody import superseded_removed
from tests.unit.fakes import FakeHost, raw, run_op

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC).timestamp()
FILES = {
    "certs/intermediate_ca.crt": "a",
    "secrets/intermediate_ca_key": "b",
    # Rotated 40 and 10 days ago.
    "certs/intermediate_ca.crt.replaced-20261027T120000Z": "c",
    "secrets/intermediate_ca_key.replaced-20261027T120000Z": "d",
    "secrets/intermediate_ca_key.replaced-20261127T120000Z": "e",
    # Named like neither: never touched.
    "secrets/intermediate_ca_key.replaced-someday": "f",
    "db/000001.replaced-20200101T000000Z": "g",
}
ASIDE = [
    "/etc/step-ca.before-restore-20261001000000",
    "/etc/step-ca.before-restore-20261206000000",
    "/etc/step-ca.before-restore-notes",
]


def _removed(days: int, files: dict[str, str] = FILES, aside: list[str] = ASIDE) -> list[str]:
    fake = FakeHost({CAFiles: files, FindDirectories: aside})
    yielded = run_op(superseded_removed, fake, "/etc/step-ca", days=days, now=NOW)
    commands = [c for c in yielded if isinstance(c, str)] + raw(yielded)
    if not commands:
        return []
    (command,) = commands
    assert command.startswith("rm -rf -- ")
    return command.removeprefix("rm -rf -- ").split()


def test_what_a_rotation_or_a_restore_superseded_goes_after_its_retention() -> None:
    assert _removed(30) == [
        "/etc/step-ca.before-restore-20261001000000",
        "/etc/step-ca/certs/intermediate_ca.crt.replaced-20261027T120000Z",
        "/etc/step-ca/secrets/intermediate_ca_key.replaced-20261027T120000Z",
    ]
    assert len(_removed(5)) == 4
    assert len(_removed(1)) == 5
    assert _removed(400) == []


def test_nothing_superseded_changes_nothing() -> None:
    fake = FakeHost({CAFiles: {"certs/root_ca.crt": "a"}, FindDirectories: []})
    assert run_op(superseded_removed, fake, "/etc/step-ca", days=1, now=NOW) == []
    assert fake.noops == ["nothing superseded is older than 1 days"]
