"""Day-2 operations on a running cluster: each shows its effect on the hosts and that etcd
stayed healthy (and, where members restart, that a client's writes never failed)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness import artifacts
from tests.harness.artifacts import VERSIONS, other_release
from tests.harness.checks import cluster_healthy, etcdctl
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

SSL = "/etc/etcd/ssl"
MEMBERS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
OLD_ETCD = "3.5.33"


def _serial(scenario: Scenario, host: str, kind: str) -> str:
    cmd = f"openssl x509 -in {SSL}/{host}-{kind}.crt -noout -serial"
    return docker_exec(scenario, host, cmd).stdout.strip()


def _pids(scenario: Scenario) -> dict[str, str]:
    return {h: docker_exec(scenario, h, "pidof etcd").stdout.strip() for h in MEMBERS}


def Writer(scenario: Scenario) -> ContinuousWriter:
    """client-1 writing through every member all along."""
    endpoints = ",".join(f"https://{h}:2379" for h in MEMBERS)
    return ContinuousWriter(
        scenario, "client-1", etcdctl("client-1", "put /day2/$i $i", endpoints=endpoints)
    )


@pytest.fixture(scope="module")
def day2_archives(step_artifacts: Path, etcd_release: Path) -> Path:
    return artifacts.combined(step_artifacts, etcd_release, artifacts.upstream("etcd", OLD_ETCD))


@pytest.fixture(scope="module")
def day2_hosts(day2_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-day2", "172.28.70.0/24", day2_archives)
    with scenario_hosts(scenario) as started:
        # The cluster starts on the older etcd, for the rolling upgrade below.
        run_pyinfra(started, "deploys/cluster.py", "--data", f"etcd_version={OLD_ETCD}")
        yield started


def test_rolling_upgrade_of_etcd(day2_hosts: Scenario) -> None:
    version = docker_exec(day2_hosts, "etcd-k8s-1", "/opt/bin/etcd --version | head -1").stdout
    assert OLD_ETCD in version
    with Writer(day2_hosts) as writer:
        run = run_pyinfra(day2_hosts, "deploys/cluster.py")
    assert writer.writes > 10 and writer.failed == 0
    for host in MEMBERS:
        assert "etcd | Rolling restart after a change" in run.changes[host]
        out = docker_exec(day2_hosts, host, etcdctl(host, "endpoint status -w json")).stdout
        assert json.loads(out)[0]["Status"]["version"] == VERSIONS["etcd"]
    assert cluster_healthy(day2_hosts)
    assert run_pyinfra(day2_hosts, "deploys/cluster.py").changes == {}


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
    refused for renewal), replaced by one with a new key made on the host; writes go on."""
    host = "etcd-k8s-3"
    docker_exec(day2_hosts, host, f"mkdir -p /root/old && cp {SSL}/{host}-* /root/old/")
    before = {k: _serial(day2_hosts, host, k) for k in ("peer", "server", "client")}
    keys = _keys(day2_hosts, host)
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
