"""Moving a member between etcd releases: what etcd's upgrade guides require before the
first member of a cluster gets another minor release, checked on every member before any
binary is replaced.

etcd upgrades one minor release at a time, from a patch release recent enough for the next
minor (upgrade_3_6.md: every 3.5 member on 3.5.32 or later, which repairs membership data
the v2 store and the v3 store disagree on; upgrade_3_7.md: 3.6.11 or later), with a healthy
cluster, and from 3.5 only when the v2 store holds nothing but membership (3.6 refuses to
start on anything else): `etcdutl check v2store`, which only 3.5's etcdutl has. A lower
minor release goes through etcd's downgrade API (deploys/etcd_downgrade.py); a patch release
of the same minor replaces the binary in the rolling restart, without checks.
"""

from __future__ import annotations

import re
from typing import Any

from pyinfra import host
from pyinfra.api import OperationError, StringCommand, operation

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdMember, EtcdVersions, cluster_healthy
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.etcd.member import Member
from etcd_step_pki.templates.scripts import script as run_script

SUPPORTED_MINORS = ("3.5", "3.6", "3.7")
# etcd's feature gates (server/features/etcd_features.go), which replaced the experimental
# flags in 3.6 (3.7 removed those flags); 3.5 has none.
FEATURE_GATES = {
    "3.5": (),
    "3.6": (
        "CompactHashCheck", "InitialCorruptCheck", "LeaseCheckpoint", "LeaseCheckpointPersist",
        "SetMemberLocalAddr", "StopGRPCServiceOnDefrag", "TxnModeWriteWithSharedBuffer",
    ),
    "3.7": (
        "CompactHashCheck", "FastLeaseKeepAlive", "InitialCorruptCheck", "LeaseCheckpoint",
        "LeaseCheckpointPersist", "PriorityRequest", "SetMemberLocalAddr",
        "StopGRPCServiceOnDefrag", "TxnModeWriteWithSharedBuffer",
    ),
}  # fmt: skip
# The oldest patch release of each minor release that may move on to the next one.
UPGRADE_FROM = {"3.5": (3, 5, 32), "3.6": (3, 6, 11)}
_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def release(version: str) -> tuple[int, int, int]:
    """`3.6.14` as (3, 6, 14)."""
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not an etcd release (MAJOR.MINOR.PATCH)")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def minor(version: str) -> str:
    """`3.6.14` -> `3.6`."""
    return ".".join(version.split(".")[:2])


def change_problem(current: str, target: str, *, downgrading: bool = False) -> str | None:
    """Why a member running `current` may not move to `target` in a rolling restart, or
    None. `downgrading`: etcd's downgrade to `target`'s minor is enabled (the downgrade
    deploy), so one minor lower is the way, and anything else is refused."""
    have, want = release(current), release(target)
    if have[:2] == want[:2]:
        return None
    if want[:2] < have[:2]:
        if downgrading and (have[0], have[1] - 1) == want[:2]:
            return None
        if downgrading:
            return f"etcd {current} to {target}: a downgrade goes one minor release at a time"
        return (
            f"etcd {current} to {target} is a downgrade: it goes through etcd's downgrade API, "
            f"one minor release at a time: run deploys/etcd_downgrade.py with etcd_version "
            f"{target}"
        )
    if downgrading:
        return f"etcd {current} to {target} is no downgrade: run deploys/cluster.py"
    following = f"{have[0]}.{have[1] + 1}"
    if want[:2] != (have[0], have[1] + 1):
        return (
            f"etcd {current} to {target} skips {following}: etcd upgrades one minor release at "
            f"a time; upgrade every member to the newest {following} release first"
        )
    oldest = UPGRADE_FROM.get(minor(current))
    if oldest is not None and have < oldest:
        return (
            f"etcd {current} cannot move to {following}: etcd's upgrade guide requires "
            f"{'.'.join(map(str, oldest))} or later; upgrade every member to the newest "
            f"{minor(current)} release first"
        )
    return None


def settings_problem(version: str, feature_gates: dict[str, bool]) -> tuple[str, str] | None:
    """The setting a member of etcd `version` cannot run with, and why; None when it can."""
    branch = minor(version)
    if branch not in SUPPORTED_MINORS:
        return "etcd_version", (
            f"{version} is of etcd {branch}; supported: {', '.join(SUPPORTED_MINORS)}"
        )
    known = FEATURE_GATES[branch]
    if feature_gates and not known:
        return "etcd_feature_gates", (
            f"etcd {branch} has no feature gates (they came with 3.6); leave it empty"
        )
    unknown = sorted(set(feature_gates) - set(known))
    if unknown:
        return "etcd_feature_gates", (
            f"{', '.join(unknown)}: no feature gate of etcd {branch} (it has {', '.join(known)})"
        )
    return None


def _running_versions(view: dict[str, Any]) -> dict[str, str]:
    """Each member's name and the etcd release it runs, as the cluster answered."""
    names = {m["id"]: m["name"] for m in view["members"]}
    return {names.get(s["id"], s["endpoint"]): s["version"] for s in view["status"]}


@operation()
def release_change_allowed(
    member: Member,
    *,
    installed: str | None,
    target: str,
    bin_dir: str = "/opt/bin",
    etcd_user: str = "etcd",
    downgrading: bool = False,
) -> Commands:
    """
    Refuse, before any binary is replaced, a move of this member to `target` that etcd's
    upgrade and downgrade guides do not allow; from 3.5 to 3.6, check the v2 store.

    + member: this member
    + installed: the etcd release installed here (None: none yet)
    + target: the etcd release to install
    + bin_dir: where etcd's binaries are
    + etcd_user: the account that owns the member's data (the v2 store check runs as it)
    + downgrading: etcd's downgrade API is enabled for `target`'s minor release

    Only a change of minor release is checked (and asks the cluster): a new patch release, or
    a run that changes nothing, costs nothing here. Every member's running release is
    checked, the cluster must be healthy, and the v2 store check runs on a copy of the
    member's snapshot and WAL files (etcdutl reads them; etcd goes on running).
    """
    if installed is None or minor(installed) == minor(target):
        host.noop(f"etcd {target}: no other minor release")
        return
    local = memo.get_fact(
        host, EtcdMember, config=member.config_path, data_dir=member.data_dir, unit=member.unit
    )
    if not local["bootstrapped"]:
        host.noop(f"{member.name} holds no data yet: it starts on {target}")
        return
    view = memo.get_fact(host, EtcdCluster, etcdctl_args=member.etcdctl.args)
    if not local["active"] or not cluster_healthy(view):
        raise OperationError(
            f"etcd {installed} to {target} on {member.name}: the cluster must be healthy "
            f"first ({view['error'] or 'not every member answers healthy'})"
        )
    versions = {member.name: installed, **_running_versions(view)}
    found = {
        name: change_problem(v, target, downgrading=downgrading) for name, v in versions.items()
    }
    problems = sorted(f"{name}: {problem}" for name, problem in found.items() if problem)
    if problems:
        raise OperationError("; ".join(problems))
    if minor(installed) == "3.5" and not downgrading:
        yield v2store_check(member, bin_dir=bin_dir, etcd_user=etcd_user, target=target)


def v2store_check(member: Member, *, bin_dir: str, etcd_user: str, target: str) -> StringCommand:
    """The check, as the member's account, that its v2 store holds membership only."""
    return run_script(
        "etcd-v2store-check.sh.j2",
        etcdutl=f"{bin_dir.rstrip('/')}/etcdutl",
        data_dir=member.data_dir,
        user=etcd_user,
        name=member.name,
        target=target,
    )


def versions_of(member: Member) -> dict[str, str]:
    """The member's and its cluster's etcd releases, as the member answers."""
    ctl = member.etcdctl
    return memo.get_fact(
        host, EtcdVersions, cacert=ctl.cacert, cert=ctl.cert, key=ctl.key, url=ctl.endpoint
    )


@operation()
def downgrade_enabled(member: Member, *, target: str) -> Commands:
    """
    etcd's downgrade to `target`'s minor release, validated and enabled through this member
    (`etcdctl downgrade validate`, then `enable`): the cluster version drops at once, the
    storage follows, and members may then restart on `target` one at a time. Once every
    member runs it, etcd ends the downgrade itself.

    + member: the member to ask (its etcdctl must have `downgrade`: 3.6 and later)
    + target: the etcd release the members go to
    """
    cluster = versions_of(member).get("etcdcluster")
    if cluster is None:
        raise OperationError(f"{member.name} does not answer: not downgrading a cluster")
    if minor(cluster) == minor(target):
        host.noop(f"the cluster's version is {cluster}: the downgrade to {target} is enabled")
        return
    have, want = release(cluster), release(target)
    if (have[0], have[1] - 1) != want[:2]:
        raise OperationError(
            f"the cluster runs etcd {minor(cluster)}: a downgrade to {target} goes one minor "
            "release at a time"
        )
    # Two commands: pyinfra runs the second only once the first succeeded.
    yield script("{c} downgrade validate {v}", c=member.etcdctl.args, v=minor(target))
    yield script("{c} downgrade enable {v}", c=member.etcdctl.args, v=minor(target))
