"""Which moves between etcd releases a rolling restart may make, and which settings each
release takes (operations/etcd/releases.py)."""

from __future__ import annotations

import pytest

from etcd_step_pki.operations.etcd.configuration import MemberOptions, TLSFiles, member_config
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.etcd.releases import change_problem
from tests.unit.test_settings_model import _refused, settings_of


@pytest.mark.parametrize(
    ("current", "target"),
    [("3.5.33", "3.5.34"), ("3.5.33", "3.5.21"), ("3.5.32", "3.6.14"), ("3.6.11", "3.7.0")],
)
def test_patch_releases_and_one_minor_up_from_a_recent_patch_are_allowed(
    current: str, target: str
) -> None:
    assert change_problem(current, target) is None


@pytest.mark.parametrize(
    ("current", "target", "words"),
    [
        ("3.5.33", "3.7.0", "skips 3.6: etcd upgrades one minor release at a time"),
        ("3.5.21", "3.6.14", "requires 3.5.32 or later; upgrade every member to the newest 3.5"),
        ("3.6.10", "3.7.0", "requires 3.6.11 or later"),
        ("3.6.14", "3.5.33", "is a downgrade: it goes through etcd's downgrade API"),
        ("3.7.0", "3.5.33", "run deploys/etcd_downgrade.py with etcd_version 3.5.33"),
    ],
)
def test_what_etcds_guides_do_not_allow_is_refused_with_what_to_do(
    current: str, target: str, words: str
) -> None:
    problem = change_problem(current, target)
    assert problem is not None and words in problem


def test_a_downgrade_goes_one_minor_release_down_only() -> None:
    assert change_problem("3.6.14", "3.5.33", downgrading=True) is None
    assert change_problem("3.7.0", "3.6.14", downgrading=True) is None
    assert "one minor release at a time" in str(change_problem("3.7.0", "3.5.33", downgrading=True))
    assert "no downgrade" in str(change_problem("3.5.33", "3.6.14", downgrading=True))
    assert change_problem("3.6.14", "3.6.13", downgrading=True) is None


def test_releases_of_other_branches_are_refused_before_any_host() -> None:
    message = _refused({"etcd_version": "3.4.30", "etcd_checksums": {}}, "etcd_version")
    assert "3.4.30 is of etcd 3.4; supported: 3.5, 3.6, 3.7" in message
    assert "3.8" in _refused({"etcd_version": "3.8.0", "etcd_checksums": {}}, "etcd_version")


def test_feature_gates_only_where_the_release_has_them() -> None:
    gates = {"InitialCorruptCheck": True}
    assert settings_of({"etcd_feature_gates": gates}).etcd.feature_gates == (
        ("InitialCorruptCheck", True),
    )
    on_35 = _refused({"etcd_version": "3.5.33", "etcd_feature_gates": gates}, "etcd_feature_gates")
    assert "etcd 3.5 has no feature gates" in on_35
    only_37 = {"etcd_version": "3.6.14", "etcd_feature_gates": {"FastLeaseKeepAlive": False}}
    assert "FastLeaseKeepAlive: no feature gate of etcd 3.6" in _refused(
        only_37, "etcd_feature_gates"
    )
    assert settings_of({**only_37, "etcd_version": "3.7.0"}).etcd.feature_gates == (
        ("FastLeaseKeepAlive", False),
    )
    bad = {"etcd_feature_gates": {"InitialCorruptCheck=true\nETCD_X": True}}
    assert "control character '\\n'" in _refused(bad, "etcd_feature_gates")
    bad = {"etcd_feature_gates": {"InitialCorruptCheck=true,ETCD_X": True}}
    assert "no feature gate" in _refused(bad, "etcd_feature_gates")
    assert "true or false" in _refused({"etcd_feature_gates": {"LeaseCheckpoint": "yes"}},
                                       "etcd_feature_gates")  # fmt: skip


def test_the_gates_are_one_line_of_the_members_environment() -> None:
    member = Member("h", "etcd-k8s-1", "10.0.0.1", "/d", "/c.env", "u", Etcdctl("e", "a", "b", "c"))
    tls = TLSFiles("p.crt", "p.key", "s.crt", "s.key", "peer-ca", "client-ca")
    gates = (("CompactHashCheck", True), ("StopGRPCServiceOnDefrag", False))
    text = member_config(member, MemberOptions("t", tls, feature_gates=gates), "x", "new")
    assert "ETCD_FEATURE_GATES=CompactHashCheck=true,StopGRPCServiceOnDefrag=false" in text
    assert "FEATURE" not in member_config(member, MemberOptions("t", tls), "x", "new")
