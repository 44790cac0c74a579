"""Faults: a peer that cannot be reached, a member that cannot start, step-ca killed while it
issues, a node cut off from the CA, the controller killed mid-run, a full snapshot directory.
A bad value or a sick host may cost one member, never the cluster; each test ends with a run
that converges."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import SSL, cluster_healthy, etcdctl, members
from tests.harness.hosts import Scenario, docker_exec, host_network, scenario_hosts
from tests.harness.pyinfra_run import kill_when, run_pyinfra, watch_run
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

SUBNET = "172.28.73.0/24"
MEMBERS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
HOSTS = (*MEMBERS, "client-1")
PRIMARY = "etcd-k8s-1"
DROP_IN = "/etc/systemd/system/etcd-k8s-{n}.service.d/chaos.conf"


CREATION_POINTS = (
    "Starting operation: step-ca | Initialise the CA",
    "Starting operation: Node certificates | Trust and certificates",
    "Starting operation: Replicate the CA | CA state from etcd-k8s-1",
    "Starting operation: etcd | etcd member configuration",
    "Starting operation: etcd | etcd member runs and starts at boot",
)


@pytest.fixture(scope="module")
def chaos_hosts(release_archives: Path) -> Iterator[Scenario]:
    with scenario_hosts(fresh_scenario("pki-test-chaos", SUBNET, release_archives)) as started:
        yield started


def _writer(scenario: Scenario) -> ContinuousWriter:
    endpoints = ",".join(f"https://{m}:2379" for m in MEMBERS)
    return ContinuousWriter(scenario, "client-1", etcdctl("client-1", "put /chaos/$i $i",
                                                          endpoints=endpoints))  # fmt: skip


def _converged(scenario: Scenario) -> None:
    """Every member healthy, every certificate valid, and runs converge to no change."""
    assert cluster_healthy(scenario)
    for host in HOSTS:
        kinds = ("client",) if host == "client-1" else ("peer", "server", "client")
        for kind in kinds:
            crt = f"{SSL}/{host}-{kind}.crt"
            verify = docker_exec(
                scenario, host, f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}"
            )
            assert verify.stdout.strip().endswith("OK"), (host, kind)
    # One run takes up what the fault left (the backup takes the CA's new database); the
    # next one changes nothing.
    run_pyinfra(scenario, "deploys/cluster.py")
    assert run_pyinfra(scenario, "deploys/cluster.py").changes == {}


def test_a_new_cluster_is_refused_while_a_peer_cannot_be_reached(chaos_hosts: Scenario) -> None:
    docker_exec(chaos_hosts, "etcd-k8s-3", "systemctl stop ssh.socket ssh.service", check=False)
    try:
        refused = run_pyinfra(
            chaos_hosts, "deploys/cluster.py", "--exclude", "etcd-k8s-3", check=False
        )
    finally:
        docker_exec(chaos_hosts, "etcd-k8s-3", "systemctl start ssh.service")
    assert refused.returncode != 0
    assert "cannot reach etcd-k8s-3: not starting" in refused.output
    for host in ("etcd-k8s-1", "etcd-k8s-2"):
        state = docker_exec(chaos_hosts, host, "test -d /var/lib/etcd/*/member", check=False)
        assert state.returncode != 0, host  # no member started as a cluster of its own
    # Once the host answers, the cluster is created, though the controller dies at five
    # points of the creation: each run takes up what the one before left.
    for marker in CREATION_POINTS:
        assert kill_when(chaos_hosts, "deploys/cluster.py", markers=[marker]), marker
    run_pyinfra(chaos_hosts, "deploys/cluster.py")
    assert set(members(chaos_hosts)) == set(MEMBERS)
    _converged(chaos_hosts)


def _the_one_tried(scenario: Scenario, path: str, output: str) -> str:
    """The only member that holds `<path>.failed` (`{host}` in `path` is the member's name):
    the one restart tried; fails when none or several were."""
    tried = [
        h for h in MEMBERS
        if docker_exec(scenario, h, f"test -f {path.format(host=h)}.failed", check=False).returncode == 0
    ]  # fmt: skip
    assert len(tried) == 1, output[-4000:]
    return tried[0]


def test_a_member_that_cannot_start_costs_one_member_only(chaos_hosts: Scenario) -> None:
    """A systemd drop-in the project knows nothing of keeps every member from starting: the
    first member tried goes back to its previous configuration, no other is restarted."""
    for n in (1, 2, 3):
        host = f"etcd-k8s-{n}"
        path = DROP_IN.format(n=n)
        docker_exec(chaos_hosts, host, f"mkdir -p {Path(path).parent} && printf "
                    f"'[Service]\\nExecStartPre=/bin/false\\n' > {path} && systemctl daemon-reload")  # fmt: skip
    pids = {h: docker_exec(chaos_hosts, h, "pidof etcd").stdout.strip() for h in MEMBERS}
    change = ["--data", "etcd_compaction_retention=2h"]
    with _writer(chaos_hosts) as writer:
        run = run_pyinfra(chaos_hosts, "deploys/cluster.py", *change, check=False)
        time.sleep(2)
    assert run.returncode != 0
    # Exactly one member was tried (the first to take its turn), and went back to
    # its previous configuration; the others run on, with the processes they had.
    first = _the_one_tried(chaos_hosts, "/etc/etcd/{host}.env", run.output)
    assert f"{first} did not rejoin a healthy cluster" in run.output, run.output[-4000:]
    assert f"it went back to the previous version of /etc/etcd/{first}.env" in run.output
    assert "The last lines of its log:" in run.output
    for host in MEMBERS:
        if host != first:
            assert docker_exec(chaos_hosts, host, "pidof etcd").stdout.strip() == pids[host]
    config = f"/etc/etcd/{first}.env"
    assert (
        "ETCD_AUTO_COMPACTION_RETENTION=1h"
        in docker_exec(chaos_hosts, first, f"cat {config}").stdout
    )
    assert (
        "ETCD_AUTO_COMPACTION_RETENTION=2h"
        in docker_exec(chaos_hosts, first, f"cat {config}.failed").stdout
    )
    assert cluster_healthy(chaos_hosts, via=next(h for h in MEMBERS if h != first)) is False
    assert writer.failed == 0, writer.errors
    print(f"\nwrites {writer.writes}, first attempts failed {writer.retried}\n{writer.errors}")
    # The drop-ins go; the same run converges.
    for n in (1, 2, 3):
        docker_exec(chaos_hosts, f"etcd-k8s-{n}",
                    f"rm -f {DROP_IN.format(n=n)} && systemctl daemon-reload")  # fmt: skip
    run_pyinfra(chaos_hosts, "deploys/cluster.py", *change)
    for host in MEMBERS:
        text = docker_exec(chaos_hosts, host, f"cat /etc/etcd/{host}.env").stdout
        assert "ETCD_AUTO_COMPACTION_RETENTION=2h" in text.splitlines()
    assert run_pyinfra(chaos_hosts, "deploys/cluster.py", *change).changes == {}
    run_pyinfra(chaos_hosts, "deploys/cluster.py")
    _converged(chaos_hosts)


def _broken_release(archives: Path, into: Path, version: str) -> Path:
    """The test archives plus an etcd `version` whose etcd exits at once (its etcdctl and
    etcdutl work): an upgrade no member can start with."""
    (real,) = archives.glob("etcd-v*-linux-amd64.tar.gz")
    work = into / "unpacked"
    work.mkdir()
    subprocess.run(["tar", "-xzf", str(real), "-C", str(work)], check=True)
    (top,) = work.iterdir()
    (top / "etcd").write_text("#!/bin/sh\necho 'this etcd cannot start' >&2\nexit 1\n")
    top = top.rename(work / f"etcd-v{version}-linux-amd64")
    release = into / "releases"
    release.mkdir()
    for archive in archives.glob("*.tar.gz"):
        (release / archive.name).symlink_to(archive)
    broken = release / f"{top.name}.tar.gz"
    subprocess.run(["tar", "-czf", str(broken), "-C", str(work), top.name], check=True)
    digest = hashlib.sha256(broken.read_bytes()).hexdigest()
    sums = (archives / "checksums.txt").read_text() + f"{digest}  {broken.name}\n"
    (release / "checksums.txt").write_text(sums)
    return release


def test_an_upgrade_that_cannot_start_goes_back_to_the_binary_it_ran(
    chaos_hosts: Scenario, release_archives: Path, tmp_path: Path
) -> None:
    """An etcd release whose etcd exits at once: the first member tried goes back to the
    binary and unit it ran, runs on them, and no other member restarts."""
    release = _broken_release(release_archives, tmp_path, "3.6.99")
    env = {"PKI_ARTIFACTS_DIR": str(release)}
    binary = "/opt/bin/etcd"
    before = {h: docker_exec(chaos_hosts, h, f"sha256sum {binary}").stdout.split()[0]
              for h in MEMBERS}  # fmt: skip
    pids = {h: docker_exec(chaos_hosts, h, "pidof etcd").stdout.strip() for h in MEMBERS}
    with _writer(chaos_hosts) as writer:
        run = run_pyinfra(chaos_hosts, "deploys/cluster.py", "--data", "etcd_version=3.6.99",
                          env=env, check=False)  # fmt: skip
    assert run.returncode != 0
    first = _the_one_tried(chaos_hosts, binary, run.output)
    assert f"it went back to the previous version of {binary}" in run.output, run.output[-3000:]
    assert "this etcd cannot start" in run.output
    # The member tried runs its old binary again, and every other member runs on untouched.
    assert docker_exec(chaos_hosts, first, f"sha256sum {binary}").stdout.split()[0] == before[first]
    for host in MEMBERS:
        if host != first:
            assert docker_exec(chaos_hosts, host, "pidof etcd").stdout.strip() == pids[host]
    assert _recovers(chaos_hosts)
    assert writer.failed == 0, writer.errors
    print(f"\nwrites {writer.writes}, first attempts failed {writer.retried}\n{writer.errors}")
    # Back on the release that runs: every member converges on it.
    run_pyinfra(chaos_hosts, "deploys/cluster.py")
    for host in MEMBERS:
        assert (
            docker_exec(chaos_hosts, host, f"sha256sum {binary}").stdout.split()[0] == before[host]
        )
        left = docker_exec(chaos_hosts, host, "ls /opt/bin /etc/systemd/system /etc/etcd")
        assert ".previous" not in left.stdout
    _converged(chaos_hosts)


def test_step_ca_killed_while_certificates_are_issued(chaos_hosts: Scenario) -> None:
    # The members' client certificates (etcdctl's; client-1 writes with its own throughout).
    for host in MEMBERS:
        docker_exec(chaos_hosts, host, f"rm -f {SSL}/{host}-client.crt")
    killer = threading.Thread(
        target=docker_exec,
        args=(chaos_hosts, PRIMARY, "sleep 0.3; systemctl kill -s KILL step-ca"),
        kwargs={"check": False},
    )

    def kill_step_ca(line: str) -> bool:
        issuing = "Starting operation: Node certificates | Trust and certificates" in line
        if issuing and killer.ident is None:
            killer.start()
        return False

    with _writer(chaos_hosts) as writer:
        watch_run(chaos_hosts, "deploys/certs.py", on_line=kill_step_ca)
        assert killer.ident is not None
        killer.join()
    assert writer.failed == 0, writer.errors
    # step-ca comes back (its unit restarts it); the next run issues what is missing.
    run_pyinfra(chaos_hosts, "deploys/certs.py")
    _converged(chaos_hosts)


def test_a_node_cut_off_from_the_ca_fails_its_renewal_visibly(chaos_hosts: Scenario) -> None:
    # A client host: cutting a member off the CA's host would cut it off its peer as well.
    ca = chaos_hosts.host(PRIMARY).address
    node = "client-1"
    host_network(chaos_hosts, node, "ip", "route", "add", "blackhole", f"{ca}/32")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    renew = ["--limit", node, "--data", f"renew_before={now}", "--data", "renew_kinds=client"]
    try:
        cut = run_pyinfra(chaos_hosts, "deploys/renew.py", *renew, check=False)
        assert cut.returncode != 0
        unit = f"step-renew-{node}-client.service"
        result = docker_exec(chaos_hosts, node, f"systemctl show -p Result --value {unit}").stdout
        assert result.strip() != "success"
        report = run_pyinfra(chaos_hosts, "deploys/status.py", "--limit", node, check=False)
        assert report.returncode != 0
        assert f"{node} client certificate: the last renewal failed" in report.output
    finally:
        host_network(chaos_hosts, node, "ip", "route", "del", "blackhole", f"{ca}/32")
    # Reconnected, the next run renews.
    run = run_pyinfra(chaos_hosts, "deploys/renew.py", *renew)
    assert node in run.changes
    assert run_pyinfra(chaos_hosts, "deploys/status.py", "--limit", node).returncode == 0
    _converged(chaos_hosts)


ROLLING_POINTS = (
    ["Starting operation: etcd | etcd member configuration"],
    ["Starting operation: etcd | etcd member unit"],
    ["Starting operation: etcd | Rolling restart after a change"],
    # Once the first member is back, while the next takes its turn.
    ["Starting operation: etcd | Rolling restart after a change", "] Success"],
    ["Starting operation: etcd | A new member joins the running cluster"],
)


def test_the_controller_killed_during_a_rolling_restart(chaos_hosts: Scenario) -> None:
    """pyinfra SIGKILLed at five points of a configuration change: each next run converges
    from what the last one left, and no write fails."""
    with _writer(chaos_hosts) as writer:
        for index, markers in enumerate(ROLLING_POINTS):
            change = ["--data", f"etcd_compaction_retention={index + 3}h"]
            assert kill_when(chaos_hosts, "deploys/cluster.py", *change, markers=markers)
            assert _recovers(chaos_hosts), markers
        final = ["--data", "etcd_compaction_retention=9h"]
        run_pyinfra(chaos_hosts, "deploys/cluster.py", *final)
    for host in MEMBERS:
        text = docker_exec(chaos_hosts, host, f"cat /etc/etcd/{host}.env").stdout
        assert "ETCD_AUTO_COMPACTION_RETENTION=9h" in text.splitlines()
        # The running etcd started after its configuration was written: it runs on it.
        started = docker_exec(chaos_hosts, host, "systemctl show --timestamp=unix -p "
                              f"ActiveEnterTimestamp --value {host}.service").stdout.strip()  # fmt: skip
        written = docker_exec(chaos_hosts, host, f"stat -c %Y /etc/etcd/{host}.env").stdout
        assert int(started.lstrip("@")) >= int(written.strip())
    assert writer.failed == 0, writer.errors
    print(f"\nwrites {writer.writes}, first attempts failed {writer.retried}\n{writer.errors}")
    run_pyinfra(chaos_hosts, "deploys/cluster.py")
    _converged(chaos_hosts)


def _recovers(scenario: Scenario, seconds: float = 60) -> bool:
    """A restart systemd carries on after the controller died ends healthy."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cluster_healthy(scenario):
            return True
        time.sleep(1)
    return False


def test_a_full_snapshot_directory_keeps_the_previous_snapshot(
    chaos_hosts: Scenario, tmp_path: Path
) -> None:
    local = [
        "--data",
        f"etcd_snapshot_local_dir={tmp_path}",
        "--data",
        "etcd_snapshot_unencrypted=true",
    ]
    run_pyinfra(chaos_hosts, "deploys/etcd_backup.py", *local, "--data", "etcd_snapshot_name=a.db")
    snapshots = "/var/backups/etcd"
    # The directory becomes a small file system holding the snapshot taken and little more.
    docker_exec(chaos_hosts, PRIMARY, f"set -e; cp -a {snapshots} /root/snapshots;"
                f" k=$(du -sk {snapshots} | cut -f1); mount -t tmpfs -o size=$((k + 64))k tmpfs"
                f" {snapshots}; cp -a /root/snapshots/. {snapshots}/;"
                f" head -c $(( $(df -k --output=avail {snapshots} | tail -1) * 1024 - 8192 ))"
                f" /dev/zero > {snapshots}/filler || true")  # fmt: skip
    try:
        full = run_pyinfra(chaos_hosts, "deploys/etcd_backup.py", *local, "--data",
                           "etcd_snapshot_name=b.db", check=False)  # fmt: skip
        assert full.returncode != 0
        assert "no space left" in full.output.lower()
        left = docker_exec(chaos_hosts, PRIMARY, f"ls {snapshots}").stdout.split()
        assert "b.db" not in left and not [name for name in left if name.startswith("b.db")]
        # The earlier snapshot is there, whole, on the full file system itself.
        check = docker_exec(chaos_hosts, PRIMARY, f"cd {snapshots} && sha256sum -c a.db.sha256")
        assert check.stdout.strip().endswith("OK")
    finally:
        docker_exec(chaos_hosts, PRIMARY, f"umount {snapshots}; rm -rf /root/snapshots",
                    check=False)  # fmt: skip
    assert cluster_healthy(chaos_hosts)


def test_two_runs_at_once_take_turns(chaos_hosts: Scenario) -> None:
    """A run that changes the cluster holds its hosts while it lives: a second run with
    another value waits for it a bounded time, then refuses naming it, changing nothing; with
    time enough it runs after the first; `--dry` needs no turn."""
    executing = threading.Event()

    def first_run() -> None:
        def started(line: str) -> bool:
            if "Starting operation" in line:
                executing.set()
            return False

        change = ["--data", "etcd_compaction_retention=7h"]
        codes.append(watch_run(chaos_hosts, "deploys/cluster.py", *change, on_line=started))

    codes: list[int] = []
    first = threading.Thread(target=first_run)
    first.start()
    try:
        assert executing.wait(120)
        other = ["--data", "etcd_compaction_retention=8h", "--data", "run_lock_wait=2"]
        refused = run_pyinfra(chaos_hosts, "deploys/cluster.py", *other, check=False)
        assert refused.returncode != 0
        assert "another run changes this host: " in refused.output
        assert " since " in refused.output and "waited 2 s" in refused.output
        dry = run_pyinfra(chaos_hosts, "deploys/cluster.py", "--dry", *other, check=False)
        assert dry.returncode == 0, dry.output[-2000:]
        # With time enough, the same value waits for the first run and then has nothing to do.
        same = ["--data", "etcd_compaction_retention=7h", "--data", "run_lock_wait=300"]
        waited = run_pyinfra(chaos_hosts, "deploys/cluster.py", *same)
        assert waited.changes == {}
    finally:
        first.join(300)
    assert codes == [0]
    for host in MEMBERS:
        text = docker_exec(chaos_hosts, host, f"cat /etc/etcd/{host}.env").stdout
        assert "ETCD_AUTO_COMPACTION_RETENTION=7h" in text.splitlines()
    run_pyinfra(chaos_hosts, "deploys/cluster.py")
    assert cluster_healthy(chaos_hosts)
