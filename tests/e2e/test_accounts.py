"""The deploys against the accounts they create: as the `etcd` account (a compromised etcd, a
mistaken `sudo -u etcd`), swapping what root acts on for links to root's files. Nothing
outside the account's own files changes, and the run or the unit fails clearly."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import SSL, cluster_healthy
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra

pytestmark = pytest.mark.e2e

SUBNET = "172.28.82.0/24"


@pytest.fixture(scope="module")
def account_hosts(release_archives: Path) -> Iterator[Scenario]:
    project = fresh_scenario("pki-test-accounts", SUBNET, release_archives)
    with scenario_hosts(project) as started:
        run_pyinfra(started, "deploys/cluster.py")
        yield started


def _owner(scenario: Scenario, host: str, path: str) -> str:
    return docker_exec(scenario, host, f"stat -c '%U:%G %a' {path}").stdout.strip()


def test_the_etcd_account_cannot_turn_its_data_directory_against_root(
    account_hosts: Scenario,
) -> None:
    """After a run the account's home is root's, so it cannot replace its data directory;
    where an earlier release left the home the account's and the account put a link to a
    root-owned directory in its data directory's place, the run refuses it, naming it, and
    that directory stays root's."""
    host, data = "etcd-k8s-3", "/var/lib/etcd/etcd-k8s-3"
    assert _owner(account_hosts, host, "/var/lib/etcd") == "root:root 755"
    assert _owner(account_hosts, host, data) == "etcd:etcd 700"
    moved = docker_exec(account_hosts, host, f"runuser -u etcd -- mv {data} {data}.x", check=False)
    assert moved.returncode != 0 and "Permission denied" in moved.stderr
    # The home as an earlier release left it, and the account's swap.
    docker_exec(account_hosts, host, "systemctl stop etcd-k8s-3; install -d -m 0755"
                " /srv/root-only; chown etcd:etcd /var/lib/etcd")  # fmt: skip
    docker_exec(account_hosts, host, f"runuser -u etcd -- sh -c 'mv {data} {data}.kept &&"
                f" ln -s /srv/root-only {data}'")  # fmt: skip
    try:
        refused = run_pyinfra(account_hosts, "deploys/certs.py", "--limit", host, check=False)
        assert refused.returncode != 0
        assert f"{data}: a symbolic link or no directory" in refused.output
        assert _owner(account_hosts, host, "/srv/root-only") == "root:root 755"
    finally:
        docker_exec(account_hosts, host, f"rm -f {data}; mv {data}.kept {data};"
                    " systemctl start etcd-k8s-3; rmdir /srv/root-only", check=False)  # fmt: skip
    # The next run takes the home back for root; the data directory stays the account's.
    run_pyinfra(account_hosts, "deploys/cluster.py")
    assert run_pyinfra(account_hosts, "deploys/cluster.py").changes == {}
    assert _owner(account_hosts, host, "/var/lib/etcd") == "root:root 755"
    assert _owner(account_hosts, host, data) == "etcd:etcd 700"
    assert cluster_healthy(account_hosts)


def test_a_certificates_directory_the_account_was_given_is_taken_back_first(
    account_hosts: Scenario,
) -> None:
    """An earlier (cfssl) layout gave `ssl_dir` to the account, which put links to root's
    files and directories wherever root writes or reads a new pair: the run takes the
    directory for root before it issues, removes the links instead of following them, and
    issues; the key and certificate are then reached through the pair's link alone."""
    host, victim, victim_dir = "etcd-k8s-3", "/srv/victim", "/srv/victim-dir"
    crt, key, pair = (f"{SSL}/etcd-k8s-3-peer.{end}" for end in ("crt", "key", "pair"))
    docker_exec(account_hosts, host, f"echo root-only > {victim}; chmod 0600 {victim};"
                f" install -d -m 0700 {victim_dir}; echo root-only > {victim_dir}/crt;"
                f" chown etcd:etcd {SSL}; rm -f {crt} {key} {pair}")  # fmt: skip
    # Where the deploy links names and swaps the pair, and the pair and a generation
    # directory the account made itself.
    planted = {f"{crt}.link": victim, f"{key}.link": victim, f"{pair}.link": victim,
               pair: victim_dir, f"{SSL}/.etcd-k8s-3-peer.planted": victim_dir}  # fmt: skip
    for link, target in planted.items():
        docker_exec(account_hosts, host, f"runuser -u etcd -- ln -s {target} {link}")
    try:
        run = run_pyinfra(account_hosts, "deploys/certs.py", "--limit", host)
        assert host in run.changes
        assert docker_exec(account_hosts, host, f"cat {victim} {victim_dir}/crt").stdout == (
            "root-only\nroot-only\n"
        )
        assert docker_exec(account_hosts, host, f"ls -A {victim_dir}").stdout == "crt\n"
        assert _owner(account_hosts, host, SSL) == "root:root 755"
        verify = docker_exec(
            account_hosts, host, f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}"
        )
        assert verify.stdout.strip().endswith("OK")
        names = docker_exec(account_hosts, host, f"readlink {crt} {key} {pair}").stdout.split()
        assert names[:2] == ["etcd-k8s-3-peer.pair/crt", "etcd-k8s-3-peer.pair/key"]
        assert names[2].startswith(".etcd-k8s-3-peer.") and names[2] != ".etcd-k8s-3-peer.planted"
        assert _owner(account_hosts, host, f"{SSL}/{names[2]}") == "root:root 755"
        links = docker_exec(account_hosts, host, f"find {SSL} -name '*.link'")
        assert links.stdout == ""
        # The renewal unit's root step writes in the pair's directory, which is root's.
        renew = "/run/systemd/system/step-renew-etcd-k8s-3-peer.service.d"
        docker_exec(account_hosts, host, f"mkdir -p {renew}; printf '[Service]\\nExecCondition=\\n'"
                    f" > {renew}/now.conf; systemctl daemon-reload;"
                    " systemctl start step-renew-etcd-k8s-3-peer.service;"
                    f" rm -rf {renew}; systemctl daemon-reload")  # fmt: skip
        assert docker_exec(account_hosts, host, f"cat {victim}").stdout == "root-only\n"
        assert docker_exec(account_hosts, host, f"test -e {pair}/crt.new", check=False).returncode
    finally:
        docker_exec(account_hosts, host, f"rm -rf {victim} {victim_dir}", check=False)
    # The backup takes the CA's new database; then nothing is left to change.
    run_pyinfra(account_hosts, "deploys/cluster.py")
    assert run_pyinfra(account_hosts, "deploys/cluster.py").changes == {}


@pytest.mark.parametrize(
    ("unit", "made", "target"),
    [
        # On the primary cert-manager, also a member: the link points at the CA password.
        ("step-renew-etcd-k8s-1-peer", "new.crt", f"{SSL}/etcd-k8s-1-peer.crt"),
        ("etcd-pki-crl", "ca.crl", f"{SSL}/ca.crl"),
    ],
)
def test_a_units_root_step_reads_the_accounts_file_as_the_account(
    account_hosts: Scenario, unit: str, made: str, target: str
) -> None:
    """The account makes a link to the CA password where the unit's own step (as the
    account) leaves its file: the privileged step that puts the file in place reads it with
    the account's rights, fails, and the file in place is unchanged, the password nowhere."""
    host, secret = "etcd-k8s-1", "/etc/step-ca/secrets/password"
    drop_in = f"/etc/systemd/system/{unit}.service.d/swap.conf"
    # What runs as the account (ExecStart, User=etcd): the link in place of the new file.
    swap = (
        f"[Service]\nExecCondition=\nExecStart=\nExecStart=/bin/ln -sf {secret} %t/{unit}/{made}\n"
    )
    before = docker_exec(account_hosts, host, f"sha256sum {target}").stdout
    docker_exec(account_hosts, host, f"mkdir -p {Path(drop_in).parent}; cat > {drop_in};"
                " systemctl daemon-reload", input=swap)  # fmt: skip
    try:
        started = docker_exec(account_hosts, host, f"systemctl start {unit}.service", check=False)
        assert started.returncode != 0
        state = docker_exec(account_hosts, host, f"systemctl show -p Result --value {unit}")
        assert state.stdout.strip() == "exit-code"
        assert docker_exec(account_hosts, host, f"sha256sum {target}").stdout == before
        password = docker_exec(account_hosts, host, f"cat {secret}").stdout.strip()
        found = docker_exec(account_hosts, host, f"grep -rlF -- '{password}' {SSL}", check=False)
        assert found.stdout == ""
    finally:
        docker_exec(account_hosts, host, f"rm -rf {Path(drop_in).parent}; systemctl"
                    f" daemon-reload; systemctl reset-failed {unit}.service", check=False)  # fmt: skip
    assert run_pyinfra(account_hosts, "deploys/cluster.py").changes == {}


def test_the_step_accounts_links_in_its_database_reach_nothing_of_roots(
    account_hosts: Scenario,
) -> None:
    """The `step` account (a compromised step-ca) puts links to the CA password in its
    database: the file modes step, the replication to the backup cert-manager and the
    digests that decide it leave the password root's and copy it nowhere; the backup gets
    the link as a link, the account's."""
    secret, db = "/etc/step-ca/secrets/password", "/etc/step-ca/db"
    primary, backup = "etcd-k8s-1", "etcd-k8s-2"
    # What step-ca's process can do in its database (the account itself cannot pass the
    # 0700 /etc/step-ca outside step-ca's own mounts): a link of the account's.
    docker_exec(account_hosts, primary, f"ln -s {secret} {db}/planted;"
                f" chown -h step:step {db}/planted")  # fmt: skip
    # New certificates write to the database, so the run replicates it.
    docker_exec(account_hosts, "client-1", f"rm -f {SSL}/client-1-client.crt")
    run = run_pyinfra(account_hosts, "deploys/cluster.py")
    assert "Replicate the CA | CA state from etcd-k8s-1" in run.changes[backup]
    for host in (primary, backup):
        assert _owner(account_hosts, host, secret) == "root:root 400"
        password = docker_exec(account_hosts, host, f"cat {secret}").stdout.strip()
        found = docker_exec(account_hosts, host, f"grep -rlF -- '{password}' {db}", check=False)
        assert found.stdout == ""
    link = docker_exec(account_hosts, backup, f"stat -c '%F %U %N' {db}/planted").stdout
    assert link.startswith(f"symbolic link step '{db}/planted' -> '{secret}'")
    docker_exec(account_hosts, primary, f"rm -f {db}/planted")
    run_pyinfra(account_hosts, "deploys/cluster.py")
    assert run_pyinfra(account_hosts, "deploys/cluster.py").changes == {}


def _plant(scenario: Scenario, host: str, data: str) -> str:
    """As the account, links in its data directory to a file and a directory of root's;
    what those are, to compare after."""
    docker_exec(scenario, host, "echo root-only > /srv/victim; chmod 0600 /srv/victim;"
                " install -d -m 0700 /srv/victim-dir; echo root-only > /srv/victim-dir/f")  # fmt: skip
    docker_exec(scenario, host, f"runuser -u etcd -- sh -c 'ln -s /srv/victim {data}/planted &&"
                f" ln -s /srv/victim-dir {data}/member/planted-dir'")  # fmt: skip
    return _victims(scenario, host)


def _victims(scenario: Scenario, host: str) -> str:
    """The owners, modes and contents of root's file and directory the links lead to."""
    paths = "/srv/victim /srv/victim-dir /srv/victim-dir/f"
    return docker_exec(scenario, host, f"stat -c '%U:%G %a %n' {paths}; cat /srv/victim").stdout


def test_a_restore_and_a_removal_never_follow_the_accounts_links(
    account_hosts: Scenario, tmp_path: Path
) -> None:
    """Links the account put in its data directory, to a file and a directory of root's:
    a snapshot, a restore (the data kept aside, the new data given to the account) and the
    member's removal (its data kept as `.removed`) leave both as they were."""
    host, data = "etcd-k8s-2", "/var/lib/etcd/etcd-k8s-2"
    before = _plant(account_hosts, host, data)
    assert before.startswith("root:root 600 /srv/victim\nroot:root 700 /srv/victim-dir\n")
    local = ["--data", f"etcd_snapshot_local_dir={tmp_path}", "--data",
             "etcd_snapshot_unencrypted=true", "--data", "etcd_snapshot_name=accounts.db"]  # fmt: skip
    run_pyinfra(account_hosts, "deploys/etcd_backup.py", *local)
    snapshot = tmp_path / "accounts.db"
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    run_pyinfra(account_hosts, "deploys/etcd_restore.py", "--data",
                f"etcd_restore_snapshot={snapshot}", "--data", f"etcd_restore_confirm={digest}")  # fmt: skip
    assert cluster_healthy(account_hosts)
    assert _victims(account_hosts, host) == before
    assert _owner(account_hosts, host, data) == "etcd:etcd 700"
    aside = docker_exec(account_hosts, host, f"ls -d {data}.before-restore-*").stdout.split()
    assert len(aside) == 1 and _owner(account_hosts, host, aside[0]).startswith("etcd:etcd")

    # The member removed, then back as a new member: its links were in the data kept aside.
    docker_exec(account_hosts, host, f"rm -rf {data}.before-restore-*")
    before = _plant(account_hosts, host, data)
    run_pyinfra(account_hosts, "deploys/remove_node.py", "--data", f"etcd_remove_node={host}")
    assert _victims(account_hosts, host) == before
    assert docker_exec(account_hosts, host, f"test -L {data}.removed/planted").returncode == 0
    docker_exec(account_hosts, host, f"rm -rf {data}.removed /srv/victim /srv/victim-dir")
    run_pyinfra(account_hosts, "deploys/cluster.py")
    assert cluster_healthy(account_hosts)
    assert run_pyinfra(account_hosts, "deploys/cluster.py").changes == {}
