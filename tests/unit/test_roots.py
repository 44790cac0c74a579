"""The pinned root: another root is refused naming both; the first one found is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.deploys.components.arguments import pinned_root
from etcd_step_pki.operations import roots
from tests.unit.test_certificates import _ca, _pem
from tests.unit.test_settings_model import settings_of


def test_another_root_is_refused_and_the_first_one_is_recorded(tmp_path: Path) -> None:
    first, other = _pem(_ca("Root A")[0]), _pem(_ca("Root B")[0])
    record = tmp_path / "inventory.k8s.root-sha256"
    unpinned = roots.PinnedRoot(None, str(record))
    roots.refuse_other(other, unpinned, "the CA")  # nothing pinned yet: any root
    roots.record(first, unpinned)
    assert record.read_text() == roots.root_fingerprint(first) + "\n"
    pinned = roots.PinnedRoot(roots.root_fingerprint(first), str(record), "recorded")
    roots.refuse_other(first, pinned, "the CA")
    with pytest.raises(OperationError, match=r"has root [0-9a-f]{64}, not the pinned"):
        roots.refuse_other(other, pinned, "the CA on etcd-k8s-1")
    roots.record(other, pinned)  # a pinned root is never overwritten
    assert record.read_text() == roots.root_fingerprint(first) + "\n"


def test_the_pin_comes_from_the_setting_the_record_or_nothing(tmp_path: Path) -> None:
    record = tmp_path / "r"
    data = {"step_ca_root_record": str(record)}
    assert pinned_root(settings_of(data)).fingerprint is None  # nothing recorded yet
    record.write_text("ab" * 32 + "\n")
    assert pinned_root(settings_of(data)).fingerprint == "ab" * 32
    # The operator accepts a new root: the run records what it finds.
    assert pinned_root(settings_of({**data, "ca_accept_new_root": True})).fingerprint is None
    # Set, in any common spelling, it wins over the record.
    colons = ":".join(["CD"] * 32)
    found = pinned_root(settings_of({**data, "step_ca_root_fingerprint": colons}))
    assert found.fingerprint == "cd" * 32 and found.source == "step_ca_root_fingerprint"
