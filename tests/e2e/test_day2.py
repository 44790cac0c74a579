"""Day-2 operations on a running cluster: each shows its effect on the hosts and that etcd
stayed healthy (and, where members restart, that a client's writes never failed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness import artifacts
from tests.harness.artifacts import VERSIONS, other_release
from tests.harness.checks import (
    cluster_healthy,
    etcd_versions,
    etcdctl,
    wait_for_cluster_version,
)
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

SSL = "/etc/etcd/ssl"
MEMBERS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
ENDPOINTS = ",".join(f"https://{h}:2379" for h in MEMBERS)
OLD_ETCD = "3.5.33"
NEWEST_ETCD = "3.7.0"


def _serial(scenario: Scenario, host: str, kind: str) -> str:
    cmd = f"openssl x509 -in {SSL}/{host}-{kind}.crt -noout -serial"
    return docker_exec(scenario, host, cmd).stdout.strip()


def _pids(scenario: Scenario) -> dict[str, str]:
    return {h: docker_exec(scenario, h, "pidof etcd").stdout.strip() for h in MEMBERS}


def Writer(scenario: Scenario) -> ContinuousWriter:
    """client-1 writing through every member all along."""
    return ContinuousWriter(
        scenario, "client-1", etcdctl("client-1", "put /day2/$i $i", endpoints=ENDPOINTS)
    )


@pytest.fixture(scope="module")
def day2_archives(step_artifacts: Path, etcd_release: Path) -> Path:
    older, newest = (artifacts.upstream("etcd", v) for v in (OLD_ETCD, NEWEST_ETCD))
    return artifacts.combined(step_artifacts, etcd_release, older, newest)


@pytest.fixture(scope="module")
def day2_hosts(day2_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-day2", "172.28.70.0/24", day2_archives)
    with scenario_hosts(scenario) as started:
        # The cluster starts on the older etcd, for the rolling upgrade below.
        run_pyinfra(started, "deploys/cluster.py", "--data", f"etcd_version={OLD_ETCD}")
        yield started


def _untouched(scenario: Scenario) -> dict[str, str]:
    """What a refused run must leave as it was: every member's binary and process."""
    binaries = {h: docker_exec(scenario, h, "sha256sum /opt/bin/etcd").stdout for h in MEMBERS}
    return {**binaries, **{f"{h} pid": p for h, p in _pids(scenario).items()}}


def test_an_upgrade_that_skips_a_minor_release_is_refused(day2_hosts: Scenario) -> None:
    before = _untouched(day2_hosts)
    run = run_pyinfra(day2_hosts, "deploys/cluster.py", "--data", f"etcd_version={NEWEST_ETCD}",
                      check=False)  # fmt: skip
    assert run.returncode != 0
    assert f"etcd {OLD_ETCD} to {NEWEST_ETCD} skips 3.6: etcd upgrades one minor release" in (
        run.output
    )
    assert _untouched(day2_hosts) == before
    assert cluster_healthy(day2_hosts)


def test_an_upgrade_is_refused_while_a_member_is_down(day2_hosts: Scenario) -> None:
    docker_exec(day2_hosts, "etcd-k8s-3", "systemctl stop etcd-k8s-3")
    try:
        before = {h: docker_exec(day2_hosts, h, "sha256sum /opt/bin/etcd").stdout for h in MEMBERS}
        run = run_pyinfra(day2_hosts, "deploys/cluster.py", check=False)
        assert run.returncode != 0
        assert f"etcd {OLD_ETCD} to {VERSIONS['etcd']}" in run.output
        assert "the cluster must be healthy first" in run.output
        after = {h: docker_exec(day2_hosts, h, "sha256sum /opt/bin/etcd").stdout for h in MEMBERS}
        assert after == before
    finally:
        docker_exec(day2_hosts, "etcd-k8s-3", "systemctl start etcd-k8s-3")
    assert cluster_healthy(day2_hosts)


def test_rolling_upgrade_of_etcd_from_35_and_a_downgrade_back(
    day2_hosts: Scenario, tmp_path: Path
) -> None:
    """3.5 to 3.6, one member first (the cluster's version moving only with the last), down
    to 3.5 through etcd's downgrade API and up again; a client writing all along loses no
    write; a snapshot taken on 3.5 restores on 3.6. (3.6 to 3.7: tests/e2e/test_cluster.)"""
    default = VERSIONS["etcd"]
    on_35 = {**dict.fromkeys(MEMBERS, OLD_ETCD), "cluster": "3.5.0"}
    on_36 = {**dict.fromkeys(MEMBERS, default), "cluster": "3.6.0"}
    assert etcd_versions(day2_hosts, MEMBERS) == on_35
    local = ["--data", f"etcd_snapshot_local_dir={tmp_path}",
             "--data", "etcd_snapshot_unencrypted=true", "--data", "etcd_snapshot_name=on-35.db"]  # fmt: skip
    put = etcdctl("client-1", "put /day2/before-snapshot 35", endpoints=ENDPOINTS)
    docker_exec(day2_hosts, "client-1", put)
    run_pyinfra(day2_hosts, "deploys/etcd_backup.py", *local)
    put = etcdctl("client-1", "put /day2/after-snapshot 1", endpoints=ENDPOINTS)
    docker_exec(day2_hosts, "client-1", put)

    with Writer(day2_hosts) as writer:
        first = run_pyinfra(day2_hosts, "deploys/cluster.py", "--limit", "etcd-k8s-1")
        assert "etcd | Rolling restart after a change" in first.changes["etcd-k8s-1"]
        # A cluster of mixed releases keeps the older one's version.
        assert etcd_versions(day2_hosts, MEMBERS) == {**on_35, "etcd-k8s-1": default}
        run = run_pyinfra(day2_hosts, "deploys/cluster.py")
    assert writer.writes > 10 and writer.failed == 0, writer.errors
    for host in ("etcd-k8s-2", "etcd-k8s-3"):
        assert "etcd | Rolling restart after a change" in run.changes[host]
    wait_for_cluster_version(day2_hosts, MEMBERS, "3.6.0")
    assert etcd_versions(day2_hosts, MEMBERS) == on_36
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/cluster.py").changes == {}

    # Down again: refused by cluster.py, which names the way; done by etcd_downgrade.py.
    older = ["--data", f"etcd_version={OLD_ETCD}"]
    before = _untouched(day2_hosts)
    refused = run_pyinfra(day2_hosts, "deploys/cluster.py", *older, check=False)
    assert refused.returncode != 0 and "run deploys/etcd_downgrade.py" in refused.output
    assert _untouched(day2_hosts) == before
    with Writer(day2_hosts) as writer:
        run_pyinfra(day2_hosts, "deploys/etcd_downgrade.py", *older)
    assert writer.writes > 10 and writer.failed == 0, writer.errors
    assert etcd_versions(day2_hosts, MEMBERS) == on_35
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/etcd_downgrade.py", *older).changes == {}
    assert run_pyinfra(day2_hosts, "deploys/cluster.py", *older).changes == {}
    # And up to the default again, for the tests after this one.
    run_pyinfra(day2_hosts, "deploys/cluster.py")
    wait_for_cluster_version(day2_hosts, MEMBERS, "3.6.0")
    assert etcd_versions(day2_hosts, MEMBERS) == on_36

    # The snapshot taken on 3.5, restored on the default release.
    snapshot = tmp_path / "on-35.db"
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    run_pyinfra(day2_hosts, "deploys/etcd_restore.py", "--data", f"etcd_restore_snapshot={snapshot}",
                "--data", f"etcd_restore_confirm={digest}")  # fmt: skip
    get = etcdctl("client-1", "get --print-value-only", endpoints=ENDPOINTS)
    assert (
        docker_exec(day2_hosts, "client-1", f"{get} /day2/before-snapshot").stdout.strip() == "35"
    )
    assert docker_exec(day2_hosts, "client-1", f"{get} /day2/after-snapshot").stdout.strip() == ""
    assert cluster_healthy(day2_hosts)


def test_renew_now_renews_the_chosen_certificates(day2_hosts: Scenario) -> None:
    before = {(h, k): _serial(day2_hosts, h, k) for h in MEMBERS for k in ("peer", "server")}
    client = _serial(day2_hosts, "etcd-k8s-2", "client")
    pids = _pids(day2_hosts)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["--data", f"renew_before={now}", "--data", "renew_kinds=peer,server"]
    with Writer(day2_hosts) as writer:
        run = run_pyinfra(day2_hosts, "deploys/renew.py", *args)
    assert set(run.changes) == set(MEMBERS)
    assert writer.failed == 0
    for pair, serial in before.items():
        assert _serial(day2_hosts, *pair) != serial, pair
    assert _serial(day2_hosts, "etcd-k8s-2", "client") == client
    assert _pids(day2_hosts) == pids  # no restart: etcd reads new certificates by itself
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/renew.py", *args).changes == {}


def _keys(scenario: Scenario, host: str) -> set[str]:
    """The public halves of a host's keys."""
    out = docker_exec(
        scenario, host, f"for k in {SSL}/{host}-*.key; do openssl pkey -in $k -pubout; done"
    ).stdout
    return set(re.findall(r"-----BEGIN PUBLIC KEY-----\n(.*?)-----END", out, re.S))


def test_a_compromised_hosts_certificates_are_revoked_and_issued_again(
    day2_hosts: Scenario,
) -> None:
    """Every certificate of the host issued before the time: revoked at the CA (in its CRL,
    refused for renewal), replaced by one with a new key made on the host; writes go on. What
    is revoked comes from the CA's records: the host's client certificate file, replaced by
    another member's, revokes none of that member's."""
    host, other = "etcd-k8s-3", "etcd-k8s-2"
    docker_exec(day2_hosts, host, f"mkdir -p /root/old && cp {SSL}/{host}-*.[ck]* /root/old/")
    before = {k: _serial(day2_hosts, host, k) for k in ("peer", "server", "client")}
    keys = _keys(day2_hosts, host)
    theirs = _serial(day2_hosts, other, "client")
    docker_exec(day2_hosts, host, f"cp {SSL}/ca.crl /root/old/ca.crl")
    pem = docker_exec(day2_hosts, other, f"cat {SSL}/{other}-client.crt").stdout
    docker_exec(day2_hosts, host, f"cat > {SSL}/{host}-client.crt", input=pem)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args = ["--data", f"revoke_host={host}", "--data", f"revoke_before={now}"]
    old_client = f"--cert /root/old/{host}-client.crt --key /root/old/{host}-client.key"
    health = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {SSL}/root_ca.crt https://etcd-k8s-1:2379/health"
    assert docker_exec(day2_hosts, host, f"{health} {old_client}").stdout == "200"
    with Writer(day2_hosts) as writer:
        run = run_pyinfra(day2_hosts, "deploys/revoke.py", *args)
    assert set(run.changes) == set(MEMBERS)
    assert "Revoke and issue again | Trust and certificates" in run.changes[host]
    assert writer.failed == 0
    # etcd refuses the old certificate at once; the new one is accepted.
    assert docker_exec(day2_hosts, host, f"{health} {old_client}", check=False).stdout != "200"
    new_client = f"--cert {SSL}/{host}-client.crt --key {SSL}/{host}-client.key"
    assert docker_exec(day2_hosts, host, f"{health} {new_client}").stdout == "200"
    after = {k: _serial(day2_hosts, host, k) for k in before}
    assert not set(after.values()) & set(before.values())
    assert len(keys) == 3 and not _keys(day2_hosts, host) & keys
    crl = docker_exec(
        day2_hosts,
        "client-1",
        f"curl -sf --cacert {SSL}/root_ca.crt https://etcd-k8s-1:9000/1.0/crl |"
        " openssl crl -inform DER -noout -text | awk '/Serial Number:/ {{ print $3 }}'",
    ).stdout.split()
    assert {int(s.split("=")[1], 16) for s in before.values()} <= {int(s, 16) for s in crl}
    assert int(theirs.split("=")[1], 16) not in {int(s, 16) for s in crl}
    # The list from before the revocation is refused as older; the CA's own, refetched by
    # the timer's service, verifies against the CA's chain and is taken.
    replayed = docker_exec(day2_hosts, host, "/opt/bin/etcd-pki-crl-check /root/old/ca.crl",
                           check=False)  # fmt: skip
    assert replayed.returncode == 1 and "older than the one in place" in replayed.stderr
    docker_exec(day2_hosts, host, "systemctl start etcd-pki-crl.service")
    assert docker_exec(day2_hosts, host, f"cat {SSL}/ca.crl | sha256sum").stdout == (
        docker_exec(day2_hosts, "etcd-k8s-1", f"cat {SSL}/ca.crl | sha256sum").stdout
    )
    theirs_pair = f"--cert {SSL}/{other}-client.crt --key {SSL}/{other}-client.key"
    assert docker_exec(day2_hosts, other, f"{health} {theirs_pair}").stdout == "200"
    refused = docker_exec(
        day2_hosts,
        host,
        f"cd /root/old && STEPPATH=/etc/step /opt/bin/step ca renew --force {host}-peer.crt"
        f" {host}-peer.key",
        check=False,
    )
    assert refused.returncode != 0 and "lacked necessary authorization" in refused.stderr
    verify = f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {SSL}/{host}-peer.crt {SSL}/{host}-peer.crt"
    assert docker_exec(day2_hosts, host, verify).stdout.strip().endswith("OK")
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/revoke.py", *args).changes == {}
    for bad, message in (([], "revoke_host"), (["revoke_host=nowhere"], "revoke_host")):
        out = run_pyinfra(day2_hosts, "deploys/revoke.py", *[a for b in bad for a in ("--data", b)],
                          "--data", f"revoke_before={now}", check=False)  # fmt: skip
        assert out.returncode != 0 and message in out.output
        assert "Starting operation" not in out.output


def _timer(scenario: Scenario, host: str, prop: str) -> str:
    unit = f"step-renew-{host}-client.timer"
    return docker_exec(scenario, host, f"systemctl show {unit} -p {prop} --value").stdout.strip()


def test_renewal_can_be_disabled_rescheduled_and_enabled(day2_hosts: Scenario) -> None:
    off = ["--data", "renewal_enabled=false", "--limit", "client-1"]
    run_pyinfra(day2_hosts, "deploys/certs.py", *off)
    assert (_timer(day2_hosts, "client-1", "ActiveState"),
            _timer(day2_hosts, "client-1", "UnitFileState")) == ("inactive", "disabled")  # fmt: skip
    assert run_pyinfra(day2_hosts, "deploys/certs.py", *off).changes == {}

    weekly = ["--data", "renewal_on_calendar=Sun *-*-* 02:00:00", "--limit", "client-1"]
    run_pyinfra(day2_hosts, "deploys/certs.py", *weekly)
    assert _timer(day2_hosts, "client-1", "ActiveState") == "active"
    calendar = docker_exec(day2_hosts, "client-1",
                           "systemctl cat step-renew-client-1-client.timer | grep ^OnCalendar").stdout  # fmt: skip
    assert calendar.strip() == "OnCalendar=Sun *-*-* 02:00:00"
    assert run_pyinfra(day2_hosts, "deploys/certs.py", *weekly).changes == {}
    run_pyinfra(day2_hosts, "deploys/certs.py")
    assert run_pyinfra(day2_hosts, "deploys/certs.py").changes == {}
    assert cluster_healthy(day2_hosts)


def test_reissue_with_new_sans(day2_hosts: Scenario) -> None:
    key = docker_exec(day2_hosts, "etcd-k8s-3", f"sha256sum {SSL}/etcd-k8s-3-server.key").stdout
    sans = ["--data", 'cert_extra_sans=["etcd.k8s.example", "10.99.0.3"]', "--limit", "etcd-k8s-3"]
    run = run_pyinfra(day2_hosts, "deploys/certs.py", *sans)
    assert run.changes == {"etcd-k8s-3": ["Node certificates | Trust and certificates"]}
    text = docker_exec(day2_hosts, "etcd-k8s-3",
                       f"openssl x509 -in {SSL}/etcd-k8s-3-server.crt -noout -ext subjectAltName").stdout  # fmt: skip
    assert "DNS:etcd.k8s.example" in text and "IP Address:10.99.0.3" in text
    # A new certificate comes with a new key, made on the node.
    assert (
        docker_exec(day2_hosts, "etcd-k8s-3", f"sha256sum {SSL}/etcd-k8s-3-server.key").stdout
        != key
    )
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/certs.py", *sans).changes == {}


def test_maintenance_compacts_and_defragments(day2_hosts: Scenario) -> None:
    # Churn: rewrite the same keys so history and free pages pile up.
    docker_exec(day2_hosts, "etcd-k8s-1",
                "v=$(printf '%020000d' 0); for i in $(seq 1 300); do "
                + etcdctl("etcd-k8s-1", "put /churn/$((i % 5)) $v") + " >/dev/null; done")  # fmt: skip
    args = ["--data", "etcd_defrag_min_free_bytes=1"]

    def sizes() -> dict[str, tuple[int, int]]:
        out = docker_exec(day2_hosts, "etcd-k8s-1",
                          etcdctl("etcd-k8s-1", "endpoint status --cluster -w json")).stdout  # fmt: skip
        return {s["Endpoint"]: (s["Status"]["dbSize"], s["Status"]["dbSizeInUse"])
                for s in json.loads(out)}  # fmt: skip

    with Writer(day2_hosts) as writer:
        run = run_pyinfra(day2_hosts, "deploys/etcd_maintenance.py", *args)
    assert writer.failed == 0
    assert "etcd maintenance | Compact the history" in run.changes["etcd-k8s-1"]
    assert all("etcd maintenance | Defragment" in run.changes[h] for h in MEMBERS)
    after = sizes()
    for size, in_use in after.values():
        assert size - in_use < 1024 * 1024
    assert cluster_healthy(day2_hosts)
    old = docker_exec(day2_hosts, "etcd-k8s-1", etcdctl("etcd-k8s-1", "get /churn/1 --rev=2"),
                      check=False)  # fmt: skip
    assert "compacted" in old.stdout + old.stderr
    # Once the writes of the run are compacted too, a run with the default threshold has
    # nothing left to do.
    run_pyinfra(day2_hosts, "deploys/etcd_maintenance.py")
    assert run_pyinfra(day2_hosts, "deploys/etcd_maintenance.py").changes == {}


CA = "/etc/step-ca"


def _issued_by(scenario: Scenario, host: str, crt: str, intermediate: str) -> bool:
    """`crt` chains to the root through exactly `intermediate` (PEM), nothing else."""
    docker_exec(scenario, host, f"cat > /tmp/intermediate.pem <<'PEM'\n{intermediate}PEM")
    cmd = f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted /tmp/intermediate.pem {crt}"
    return docker_exec(scenario, host, cmd, check=False).returncode == 0


def test_rotate_the_intermediate_ca(day2_hosts: Scenario) -> None:
    def read(host: str, path: str) -> str:
        return docker_exec(day2_hosts, host, f"cat {path}").stdout

    old = read("etcd-k8s-1", f"{CA}/certs/intermediate_ca.crt")
    old_key = docker_exec(
        day2_hosts, "etcd-k8s-1", f"sha256sum < {CA}/secrets/intermediate_ca_key"
    ).stdout
    root = read("etcd-k8s-1", f"{CA}/certs/root_ca.crt")
    pids = _pids(day2_hosts)
    leaves = [(h, f"{SSL}/{h}-{k}.crt") for h in MEMBERS for k in ("peer", "server", "client")]
    leaves.append(("client-1", f"{SSL}/client-1-client.crt"))
    assert all(_issued_by(day2_hosts, h, crt, old) for h, crt in leaves)

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with Writer(day2_hosts) as writer:
        run = run_pyinfra(
            day2_hosts, "deploys/rotate_intermediate.py", "--data", f"rotate_before={now}"
        )
    assert writer.writes > 0 and writer.failed == 0
    assert set(run.changes) == {*MEMBERS, "client-1"}

    new = read("etcd-k8s-1", f"{CA}/certs/intermediate_ca.crt")
    assert new != old and read("etcd-k8s-1", f"{CA}/certs/root_ca.crt") == root
    check = f"openssl verify -CAfile {CA}/certs/root_ca.crt {CA}/certs/intermediate_ca.crt"
    assert docker_exec(day2_hosts, "etcd-k8s-1", check).returncode == 0
    # The old pair is kept beside the new one, as secret as before.
    kept = docker_exec(day2_hosts, "etcd-k8s-1",
                       f"stat -c '%a %U %n' {CA}/secrets/intermediate_ca_key.replaced-*"
                       f" {CA}/certs/intermediate_ca.crt.replaced-*").stdout.split("\n")  # fmt: skip
    assert kept[0].startswith("400 root ") and kept[1].startswith("644 root ")
    assert docker_exec(day2_hosts, "etcd-k8s-1",
                       f"cat {CA}/secrets/intermediate_ca_key.replaced-* | sha256sum").stdout == old_key  # fmt: skip
    assert read("etcd-k8s-1", f"{CA}/certs/intermediate_ca.crt.replaced-*") == old
    # The backup cert-manager holds the new CA state.
    assert read("etcd-k8s-2", f"{CA}/certs/intermediate_ca.crt") == new
    # Every leaf is now from the new intermediate, and every member restarted once, in turn.
    for host, crt in leaves:
        assert _issued_by(day2_hosts, host, crt, new), crt
        assert not _issued_by(day2_hosts, host, crt, old), crt
    after = _pids(day2_hosts)
    assert all(after[h] != pids[h] for h in MEMBERS)
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/status.py").returncode == 0
    again = run_pyinfra(
        day2_hosts, "deploys/rotate_intermediate.py", "--data", f"rotate_before={now}"
    )
    assert again.changes == {}
    assert _pids(day2_hosts) == after


def test_superseded_keys_and_states_go_after_their_retention(day2_hosts: Scenario) -> None:
    # A rotation and a restore of long ago left these (their time is in their names).
    old = "20200101T000000Z"
    planted = [f"{CA}/secrets/intermediate_ca_key.replaced-{old}",
               f"{CA}/certs/intermediate_ca.crt.replaced-{old}"]  # fmt: skip
    state = f"{CA}.before-restore-20200101000000"
    docker_exec(day2_hosts, "etcd-k8s-1",
                f"cp -p {CA}/secrets/intermediate_ca_key {planted[0]} && "
                f"cp -p {CA}/certs/intermediate_ca.crt {planted[1]} && "
                f"mkdir -m 0700 {state} && touch {state}/kept")  # fmt: skip
    recent = docker_exec(day2_hosts, "etcd-k8s-1", f"ls {CA}/secrets/").stdout.split()
    run = run_pyinfra(day2_hosts, "deploys/ca.py")
    assert "Superseded CA keys and states" in " ".join(run.changes.get("etcd-k8s-1", []))
    left = docker_exec(day2_hosts, "etcd-k8s-1", f"ls -d {' '.join(planted)} {state}",
                       check=False).stdout  # fmt: skip
    assert left.strip() == ""
    # The rotation's own, made today, stay for ca_superseded_retention_days.
    kept = docker_exec(day2_hosts, "etcd-k8s-1", f"ls {CA}/secrets/").stdout.split()
    assert kept == [name for name in recent if old not in name]
    assert any(".replaced-" in name for name in kept)
    assert run_pyinfra(day2_hosts, "deploys/ca.py").changes == {}


def test_rotation_refuses_bad_input_before_any_change(day2_hosts: Scenario) -> None:
    key = docker_exec(
        day2_hosts, "etcd-k8s-1", f"sha256sum {CA}/secrets/intermediate_ca_key"
    ).stdout
    for bad in (
        [],
        ["--data", "rotate_before=yesterday"],
        ["--data", "rotate_before=2026-11-28T06:00:00"],
    ):
        run = run_pyinfra(day2_hosts, "deploys/rotate_intermediate.py", *bad, check=False)
        assert run.returncode != 0 and "`rotate_before`" in run.output
        assert run.changes == {}
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    limited = run_pyinfra(day2_hosts, "deploys/rotate_intermediate.py", "--data",
                          f"rotate_before={now}", "--limit", "client-1", check=False)  # fmt: skip
    assert limited.returncode != 0 and "must be in the run" in limited.output
    assert (
        docker_exec(day2_hosts, "etcd-k8s-1", f"sha256sum {CA}/secrets/intermediate_ca_key").stdout
        == key
    )


def test_rolling_upgrade_of_step_and_step_ca(
    day2_hosts: Scenario, day2_archives: Path, step_artifacts: Path, tmp_path: Path
) -> None:
    for archive in day2_archives.glob("*.tar.gz"):
        (tmp_path / archive.name).symlink_to(archive.resolve())
    step, step_sum = other_release("step", tmp_path)
    ca, ca_sum = other_release("step-ca", tmp_path)
    upgrade = [
        "--data", f"artifact_dir={tmp_path}",
        "--data", f"step_version={step}", "--data", f"step_ca_version={ca}",
        "--data", "step_checksums=" + json.dumps({"amd64": step_sum}),
        "--data", "step_ca_checksums=" + json.dumps({"amd64": ca_sum}),
    ]  # fmt: skip
    pids = _pids(day2_hosts)
    ca_pid = docker_exec(
        day2_hosts, "etcd-k8s-1", "systemctl show -p MainPID --value step-ca"
    ).stdout
    with Writer(day2_hosts) as writer:
        run_pyinfra(day2_hosts, "deploys/cluster.py", *upgrade)
    assert writer.writes > 0 and writer.failed == 0
    for host in (*MEMBERS, "client-1"):
        version = docker_exec(day2_hosts, host, "/opt/bin/step version").stdout
        assert version.startswith(f"Smallstep CLI/{step} "), host
    for host in ("etcd-k8s-1", "etcd-k8s-2"):
        version = docker_exec(day2_hosts, host, "/opt/bin/step-ca version").stdout
        assert version.startswith(f"Smallstep CA/{ca} "), host
    new_pid = docker_exec(day2_hosts, "etcd-k8s-1", "systemctl show -p MainPID --value step-ca")
    assert new_pid.stdout != ca_pid  # step-ca runs the new binary
    assert _pids(day2_hosts) == pids  # etcd needs no restart for new step binaries
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/cluster.py", *upgrade).changes == {}
    # The new step renews through the new step-ca.
    serial = _serial(day2_hosts, "client-1", "client")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_pyinfra(
        day2_hosts, "deploys/renew.py", "--data", f"renew_before={now}", "--limit", "client-1"
    )
    assert _serial(day2_hosts, "client-1", "client") != serial
    # And back to the sandbox's versions.
    run_pyinfra(day2_hosts, "deploys/cluster.py")
    assert docker_exec(day2_hosts, "client-1", "/opt/bin/step version").stdout.startswith(
        f"Smallstep CLI/{VERSIONS['step']} "
    )
    assert cluster_healthy(day2_hosts)


def test_a_dry_run_shows_the_change_and_makes_none(day2_hosts: Scenario) -> None:
    crt = f"{SSL}/etcd-k8s-3-server.crt"
    before = docker_exec(day2_hosts, "etcd-k8s-3", f"sha256sum {crt}").stdout
    sans = ["--data", 'cert_extra_sans=["dry.k8s.example"]', "--limit", "etcd-k8s-3"]
    run = run_pyinfra(day2_hosts, "deploys/certs.py", "--dry", *sans)
    assert run.would_change == {"etcd-k8s-3": ["Node certificates | Trust and certificates"]}
    assert run.changes == {}
    assert docker_exec(day2_hosts, "etcd-k8s-3", f"sha256sum {crt}").stdout == before
