"""The deploys the way operators run them: the README's form (no -y, the prompt answered),
`--dry`, an unprivileged SSH user with sudo (`--sudo` or `_sudo` in the data), and the CA
reached through a DNS name of its own that the hosts' resolver answers."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import SSL, cluster_healthy, host_state, renews_by_hand
from tests.harness.hosts import (
    ROOT_KEY_FILE,
    Scenario,
    docker_exec,
    point_name,
    scenario_hosts,
)
from tests.harness.pyinfra_run import PyinfraRun, run_pyinfra
from tests.harness.s3 import CREDENTIALS, GpgKey, backup_data, restore_data

pytestmark = pytest.mark.e2e

SUBNET = "172.28.72.0/24"
CA_NAME = "step-ca.sandbox.test"
URL = ["--data", f"step_ca_url=https://{CA_NAME}:9000"]
PRIMARY, BACKUP = "etcd-k8s-1", "etcd-k8s-2"
HOSTS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1")
CA = "/etc/step-ca"


@pytest.fixture(scope="module")
def admin_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-operators", SUBNET, release_archives)
    scenario.ssh_user = "admin"
    scenario.ca_name = CA_NAME
    with scenario_hosts(scenario) as started:
        yield started


def _run(scenario: Scenario, deploy: str, *args: str, sudo: tuple[str, ...] = ("--sudo",),
         check: bool = True, yes: bool = False) -> PyinfraRun:  # fmt: skip
    """A deploy as admin, in the README's form unless `yes`."""
    return run_pyinfra(scenario, deploy, *sudo, *URL, *args, env=CREDENTIALS, check=check, yes=yes)


@pytest.fixture(scope="module")
def created(admin_hosts: Scenario) -> PyinfraRun:
    return _run(admin_hosts, "deploys/cluster.py")


def test_an_unprivileged_user_with_sudo_creates_the_cluster(
    admin_hosts: Scenario, created: PyinfraRun
) -> None:
    assert cluster_healthy(admin_hosts)
    for host in HOSTS:
        logins = docker_exec(admin_hosts, host, "journalctl -u ssh --no-pager -o cat").stdout
        assert "Accepted publickey for admin" in logins
        assert "Accepted publickey for root" not in logins
        key = docker_exec(admin_hosts, host, f"stat -L -c '%a %U' {SSL}/{host}-client.key").stdout
        assert key.split() == ["400", "etcd"]
        defaults = docker_exec(admin_hosts, host, "cat /etc/step/config/defaults.json").stdout
        assert f'"ca-url": "https://{CA_NAME}:9000"' in defaults
    # The CA's TLS certificate names the CA by its own name; the hosts resolve it.
    sans = docker_exec(admin_hosts, "client-1", f"getent hosts {CA_NAME}").stdout
    assert sans.split()[0] == admin_hosts.host(PRIMARY).address
    # Nothing of the runs' secrets staged in the SSH user's temporary files.
    leftovers = docker_exec(admin_hosts, PRIMARY, "ls -A /tmp").stdout.split()
    assert not [name for name in leftovers if name.startswith("pyinfra")]
    assert _run(admin_hosts, "deploys/cluster.py").changes == {}


def test_a_deleted_certificate_is_issued_again_with_sudo_from_the_data(
    admin_hosts: Scenario, created: PyinfraRun
) -> None:
    crt = f"{SSL}/etcd-k8s-3-peer.crt"
    docker_exec(admin_hosts, "etcd-k8s-3", f"rm -f {crt}")
    run = _run(admin_hosts, "deploys/certs.py", sudo=("--data", "_sudo=true"))
    assert set(run.changes) == {"etcd-k8s-3"}
    verify = docker_exec(
        admin_hosts,
        "etcd-k8s-3",
        f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}",
    )
    assert verify.stdout.strip().endswith("OK")
    assert docker_exec(admin_hosts, "etcd-k8s-3", f"stat -L -c %U {crt}").stdout.strip() == "etcd"
    assert _run(admin_hosts, "deploys/certs.py", sudo=("--data", "_sudo=true")).changes == {}


def test_backup_and_restore_as_an_unprivileged_user(
    admin_hosts: Scenario, created: PyinfraRun, s3: dict[str, str], keys: dict[str, GpgKey]
) -> None:
    _run(admin_hosts, "deploys/backup_ca.py", *backup_data(s3, keys))
    docker_exec(admin_hosts, PRIMARY, f"rm -f {CA}/config/defaults.json")
    run = _run(admin_hosts, "deploys/restore_ca.py", *restore_data(s3, keys))
    assert PRIMARY in run.changes
    assert (
        docker_exec(
            admin_hosts, PRIMARY, f"test -s {CA}/config/defaults.json", check=False
        ).returncode
        == 0
    )
    active = docker_exec(admin_hosts, PRIMARY, "systemctl is-active step-ca").stdout.strip()
    assert active == "active"
    private = Path(keys["backup"].private).read_text()
    secret_line = [line for line in private.splitlines() if len(line) > 40][3]
    assert secret_line not in run.output
    work = docker_exec(admin_hosts, PRIMARY, "ls -A /run/etcd-step-pki", check=False).stdout
    assert "ca-backup" not in work
    assert _run(admin_hosts, "deploys/restore_ca.py", *restore_data(s3, keys)).changes == {}


def test_a_snapshot_in_the_clear_is_refused_under_sudo(
    admin_hosts: Scenario, created: PyinfraRun, tmp_path: Path
) -> None:
    """pyinfra copies a file it transfers under sudo through the SSH user's temporary
    directory, readable by other local users: a snapshot in the clear never takes that way,
    fetched or sent; refused before any host is touched."""
    before = {host: host_state(admin_hosts, host) for host in HOSTS}
    fetch = _run(admin_hosts, "deploys/etcd_backup.py", "--data", "etcd_snapshot_unencrypted=true",
                 "--data", f"etcd_snapshot_local_dir={tmp_path}", check=False)  # fmt: skip
    assert fetch.returncode != 0
    assert "etcd_snapshot_unencrypted: the snapshot fetched to the controller" in fetch.output
    snapshot = tmp_path / "plain.db"
    snapshot.write_bytes(b"not sent")
    digest = hashlib.sha256(b"not sent").hexdigest()
    send = _run(admin_hosts, "deploys/etcd_restore.py", "--data",
                f"etcd_restore_snapshot={snapshot}", "--data", f"etcd_restore_confirm={digest}",
                check=False)  # fmt: skip
    assert send.returncode != 0
    assert "etcd_restore_snapshot: the snapshot sent to every member" in send.output
    assert {host: host_state(admin_hosts, host) for host in HOSTS} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.db"]
    snapshots = docker_exec(admin_hosts, PRIMARY, "ls -A /var/backups/etcd", check=False)
    assert not [name for name in snapshots.stdout.split() if name.endswith(".db")]


def _dry_cases(s3: dict[str, str], keys: dict[str, GpgKey], snapshot: Path) -> list[tuple]:
    """(deploy, data, whether the plan must name a change)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    digest = snapshot.with_name(snapshot.name + ".sha256").read_text().split()[0]
    key = keys["backup"]
    return [
        ("deploys/cluster.py", [], False),
        ("deploys/ca.py", [], False),
        # The root key leaving the cert-managers: planned, neither exported nor removed.
        ("deploys/ca.py", ["--data", "ca_root_key_offline=true",
                           "--data", f"ca_backup_recipient_key={key.public}"], True),
        ("deploys/certs.py", ["--data", 'cert_extra_sans=["dry.example"]'], True),
        ("deploys/replicate_ca.py", [], False),
        ("deploys/status.py", [], False),
        ("deploys/renew.py", ["--data", f"renew_before={now}"], True),
        ("deploys/rotate_intermediate.py", ["--data", f"rotate_before={now}"], True),
        ("deploys/etcd_maintenance.py", ["--data", "etcd_defrag_min_free_bytes=0"], True),
        ("deploys/etcd_backup.py", ["--data", "etcd_snapshot_name=dry.db",
                                    "--data", f"ca_backup_recipient_key={key.public}"], True),
        ("deploys/etcd_restore.py", ["--data", f"etcd_restore_snapshot={snapshot}",
                                     "--data", f"etcd_restore_confirm={digest}",
                                     "--data", f"etcd_restore_private_key={key.private}"], True),
        ("deploys/remove_node.py", ["--data", "etcd_remove_node=etcd-k8s-3"], True),
        ("deploys/revoke.py", ["--data", "revoke_host=client-1", "--data", f"revoke_before={now}"],
         True),
        ("deploys/failover.py", ["--data", f"ca_active={BACKUP}", "--data", "failover_force=true"],
         True),
        ("deploys/backup_ca.py", backup_data(s3, keys), False),
        ("deploys/restore_ca.py", ["--data", f"ca_restore_from={BACKUP}"], True),
        ("deploys/migrate_cfssl.py", [], False),
    ]  # fmt: skip


def test_dry_changes_nothing_on_any_host_for_any_deploy(
    admin_hosts: Scenario,
    created: PyinfraRun,
    s3: dict[str, str],
    keys: dict[str, GpgKey],
    tmp_path: Path,
) -> None:
    local = ["--data", f"etcd_snapshot_local_dir={tmp_path}", "--data", "etcd_snapshot_name=s.db",
             "--data", f"ca_backup_recipient_key={keys['backup'].public}"]  # fmt: skip
    _run(admin_hosts, "deploys/etcd_backup.py", *local)
    before = {host: host_state(admin_hosts, host) for host in HOSTS}
    tokens_before = _ca_database(admin_hosts)
    for deploy, data, names_a_change in _dry_cases(s3, keys, tmp_path / "s.db.gpg"):
        run = _run(admin_hosts, deploy, "--dry", *data, check=False)
        # migrate_cfssl.py refuses a cluster without cfssl files; status.py has nothing to
        # report as wrong here. Both change nothing either way.
        if deploy != "deploys/migrate_cfssl.py":
            assert run.returncode == 0, (deploy, run.output[-3000:])
        if names_a_change:
            assert run.would_change, (deploy, run.output[-2000:])
        for host in HOSTS:
            assert host_state(admin_hosts, host) == before[host], (deploy, host)
        assert _ca_database(admin_hosts) == tokens_before, deploy
    assert not (admin_hosts.state_dir / ROOT_KEY_FILE).exists()
    assert cluster_healthy(admin_hosts)


def _ca_database(scenario: Scenario) -> str:
    """The CA's database: every certificate issued, every token used, lands here."""
    return docker_exec(scenario, PRIMARY, f"sha256sum {CA}/db/bbolt.db").stdout


def test_failover_through_a_dns_name_as_an_unprivileged_user(
    admin_hosts: Scenario, created: PyinfraRun
) -> None:
    _run(admin_hosts, "deploys/replicate_ca.py")
    subprocess.run(["docker", "stop", admin_hosts.container(PRIMARY)], check=True,
                   capture_output=True)  # fmt: skip
    run = _run(
        admin_hosts, "deploys/failover.py", "--data", f"ca_active={BACKUP}", "--exclude", PRIMARY
    )
    backup = admin_hosts.host(BACKUP).address
    assert f"point the name {CA_NAME} at {BACKUP} ({backup})" in run.output
    assert (
        docker_exec(admin_hosts, BACKUP, "systemctl is-active step-ca").stdout.strip() == "active"
    )
    # Nodes keep the CA's name; once it points at the promoted host, renewal works.
    point_name(admin_hosts, CA_NAME, backup)
    renews_by_hand(admin_hosts, "etcd-k8s-3", "peer")
    renews_by_hand(admin_hosts, "client-1", "client")
    # A second run, with -y this time (no change detection first), only brings the members
    # the promoted CA's revocation list: it lists the proof's certificates, revoked, and the
    # first run could not read it while the name pointed at the old primary. A third run
    # finds nothing to do.
    failover = ("deploys/failover.py", "--data", f"ca_active={BACKUP}", "--exclude", PRIMARY)
    again = _run(admin_hosts, *failover, yes=True)
    crl = ["Node certificates | Revocation list"]
    assert again.changes in ({}, {"etcd-k8s-2": crl, "etcd-k8s-3": crl})
    assert _run(admin_hosts, *failover, yes=True).changes == {}
