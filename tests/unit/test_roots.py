"""The pinned root: another root is refused naming both, any root while none is recorded;
only a new CA's root is recorded, or a root the operator accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.deploys.components.arguments import pinned_root
from etcd_step_pki.operations import roots
from tests.unit.test_certificates import _ca, _pem
from tests.unit.test_settings_model import settings_of


def test_another_root_is_refused_and_only_a_new_cas_root_is_recorded(tmp_path: Path) -> None:
    first, other = _pem(_ca("Root A")[0]), _pem(_ca("Root B")[0])
    record = tmp_path / "inventory.k8s.root-sha256"
    unpinned = roots.PinnedRoot(None, str(record))
    # Nothing pinned and nothing recorded (a fresh checkout): no root is trusted.
    with pytest.raises(OperationError, match=r"nothing pins the root .* is missing"):
        roots.refuse_other(first, unpinned, "the CA")
    roots.record(first, unpinned)  # found, not made by this run: not recorded
    assert not record.exists()
    roots.record(first, unpinned, new_ca=True)  # the root of the CA this run initialised
    assert record.read_text() == roots.root_fingerprint(first) + "\n"
    # The same run holds the CA to the root it just recorded.
    roots.refuse_other(first, unpinned, "the CA")
    with pytest.raises(OperationError, match=r"not the pinned [0-9a-f]{64} \(recorded in "):
        roots.refuse_other(other, unpinned, "the CA")
    pinned = roots.PinnedRoot(roots.root_fingerprint(first), str(record), "recorded")
    roots.refuse_other(first, pinned, "the CA")
    with pytest.raises(OperationError, match=r"has root [0-9a-f]{64}, not the pinned"):
        roots.refuse_other(other, pinned, "the CA on etcd-k8s-1")
    roots.record(other, pinned, new_ca=True)  # a pinned root is never overwritten
    roots.record(other, unpinned, new_ca=True)  # nor a recorded one, but on purpose:
    assert record.read_text() == roots.root_fingerprint(first) + "\n"
    accepted = roots.PinnedRoot(None, str(record), accept_found=True)
    roots.refuse_other(other, accepted, "the CA")
    roots.record(other, accepted)
    assert record.read_text() == roots.root_fingerprint(other) + "\n"


def test_the_pin_comes_from_the_setting_the_record_or_nothing(tmp_path: Path) -> None:
    record = tmp_path / "r"
    data = {"step_ca_root_record": str(record)}
    assert pinned_root(settings_of(data)).fingerprint is None  # nothing recorded yet
    record.write_text("ab" * 32 + "\n")
    assert pinned_root(settings_of(data)).fingerprint == "ab" * 32
    # The operator accepts a new root: the run records what it finds.
    accepted = pinned_root(settings_of({**data, "ca_accept_new_root": True}))
    assert accepted.fingerprint is None and accepted.accept_found
    # Set, in any common spelling, it wins over the record.
    colons = ":".join(["CD"] * 32)
    found = pinned_root(settings_of({**data, "step_ca_root_fingerprint": colons}))
    assert found.fingerprint == "cd" * 32 and found.source == "step_ca_root_fingerprint"
