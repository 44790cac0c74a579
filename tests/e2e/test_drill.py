"""DR drills: the CA restored from the backup cert-manager's replica or from S3 into a
throwaway place, proven to issue and renew, while every live file, unit and etcd stay as they
were; a damaged backup fails the drill and leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import cluster_healthy, host_state
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts, set_ssh_user
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.s3 import (
    BUCKET,
    CREDENTIALS,
    backup_data,
    boto_args,
    latest_object,
    restore_data,
)

pytestmark = pytest.mark.e2e

SUBNET = "172.28.80.0/24"
PRIMARY, BACKUP = "etcd-k8s-1", "etcd-k8s-2"
HOSTS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1")
RECORD = "/var/lib/etcd-step-pki/last-drill.json"


def _run(scenario: Scenario, *args: str, check: bool = True):
    return run_pyinfra(scenario, *args, env=CREDENTIALS, check=check)


def _live(scenario: Scenario) -> dict[str, str]:
    """Everything live on every host (files, modes, units: checks.host_state) but the drill's
    own record, the CA's database (where the live CA revokes what the drill made), the
    primary's step-ca process, and the etcd members' processes."""
    found = {}
    for name in HOSTS:
        state = "\n".join(
            line
            for line in host_state(scenario, name).splitlines()
            if RECORD not in line and "/etc/step-ca/db/" not in line
        )
        pids = docker_exec(
            scenario,
            name,
            "systemctl show -p MainPID --value step-ca etcd-k8s-1 etcd-k8s-2 etcd-k8s-3",
            check=False,
        ).stdout
        found[name] = state + pids
    return found


def _left_behind(scenario: Scenario) -> str:
    """What a drill could leave on the drill host: its directory, its unit, its port."""
    return docker_exec(
        scenario,
        BACKUP,
        "ls -A /run/etcd-step-pki/drill 2>/dev/null; systemctl list-units --all --plain"
        " --no-legend 'etcd-pki-drill*'; ss -Hltn 'sport = :9443'",
        check=False,
    ).stdout.strip()


@pytest.fixture(scope="module")
def drill_hosts(release_archives: Path, s3, keys) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-drill", SUBNET, release_archives)
    with scenario_hosts(scenario) as started:
        run_pyinfra(started, "deploys/cluster.py")
        _run(started, "deploys/backup_ca.py", *backup_data(s3, keys))
        yield started


def test_a_drill_from_the_replica_proves_the_ca_and_touches_nothing_live(
    drill_hosts: Scenario,
) -> None:
    before = _live(drill_hosts)
    started = time.time()
    run = _run(drill_hosts, "deploys/drill.py", "-vvv", "--debug")
    assert run.changes == {BACKUP: ["DR drill | DR drill from the replica"]}
    record = json.loads(docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout)
    assert record["source"] == "replica" and record["finished"] >= started
    assert 0 < record["seconds_to_working_ca"] < 60
    assert f"working {record['seconds_to_working_ca']} s after the restore began" in run.output
    assert _live(drill_hosts) == before
    assert _left_behind(drill_hosts) == ""
    assert cluster_healthy(drill_hosts)
    # What the drill made (a proof, its renewal, a renewed copy of a live certificate) is
    # signed by the live intermediate: the live CA revoked all three.
    assert len(_revoked_by_the_drill(drill_hosts, run.output)) == 3
    # No secret of the CA in the run's output, even at -vvv --debug.
    for secret in ("password", "provisioner_password"):
        value = docker_exec(drill_hosts, BACKUP, f"cat /etc/step-ca/secrets/{secret}").stdout
        assert value.strip() and value.strip() not in run.output


def _revoked_by_the_drill(scenario: Scenario, output: str) -> set[int]:
    """The serial numbers the run says the live CA revoked for the drill, each checked to be
    in the live CA's revocation list."""
    line = next(x for x in output.splitlines() if "revoked (made by a DR drill" in x)
    serials = {int(s) for s in line.split("serial numbers ", 1)[1].split(", ")}
    crl = docker_exec(
        scenario, PRIMARY, "curl -sf --cacert /etc/step-ca/certs/root_ca.crt"
        " https://etcd-k8s-1:9000/1.0/crl | openssl crl -inform DER -noout -text"
    ).stdout  # fmt: skip
    listed = {
        int(line.split(":", 1)[1].strip(), 16)
        for line in crl.splitlines()
        if line.strip().startswith("Serial Number:")
    }
    assert serials <= listed, (serials, crl)
    return serials


def test_drill_before_skips_a_drill_that_succeeded_since(drill_hosts: Scenario) -> None:
    record = json.loads(docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout)
    earlier = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record["finished"] - 60))
    run = _run(drill_hosts, "deploys/drill.py", "--data", f"drill_before={earlier}")
    assert run.changes == {}
    assert json.loads(docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout) == record


def test_a_drill_from_s3_proves_the_latest_backup(drill_hosts: Scenario, s3, keys) -> None:
    before = _live(drill_hosts)
    data = [*restore_data(s3, keys)[2:], "--data", "drill_from=s3"]  # without ca_restore_from
    run = _run(drill_hosts, "deploys/drill.py", *data)
    assert run.changes == {BACKUP: ["DR drill | DR drill from S3"]}
    record = json.loads(docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout)
    assert record["source"].startswith(f"s3://{BUCKET}/step-ca/")
    assert _live(drill_hosts) == before
    assert _left_behind(drill_hosts) == ""


def test_dry_changes_nothing_and_a_sudo_user_drills_from_s3(
    drill_hosts: Scenario, s3, keys
) -> None:
    record = docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout
    before = _live(drill_hosts)
    assert _run(drill_hosts, "deploys/drill.py", "--dry").returncode == 0
    assert docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout == record
    assert _live(drill_hosts) == before and _left_behind(drill_hosts) == ""
    data = [*restore_data(s3, keys)[2:], "--data", "drill_from=s3"]
    set_ssh_user(drill_hosts, "admin")
    try:
        run = _run(drill_hosts, "deploys/drill.py", "--sudo", *data)
    finally:
        set_ssh_user(drill_hosts, "root")
    assert run.changes == {BACKUP: ["DR drill | DR drill from S3"]}
    again = json.loads(docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout)
    assert again["finished"] > json.loads(record)["finished"]
    assert _live(drill_hosts) == before and _left_behind(drill_hosts) == ""
    # The operator's private key came on standard input: in no output.
    secret_line = Path(keys["backup"].private).read_text().splitlines()[3]
    assert secret_line not in run.output


def test_a_drill_from_a_damaged_backup_fails_and_touches_nothing(
    drill_hosts: Scenario, s3, keys
) -> None:
    client = boto3.client("s3", endpoint_url=s3["endpoint"], **boto_args())
    latest = latest_object(client.get_object(Bucket=BUCKET, Key="step-ca/latest")["Body"].read())
    original = client.get_object(Bucket=BUCKET, Key=latest)
    body, meta = original["Body"].read(), original["Metadata"]
    # Damaged after it was made, its checksum made to match: only the signature can tell.
    damaged = body[:-64] + bytes(64)
    digest = hashlib.sha256(damaged).hexdigest()
    name = latest.rsplit("/", 1)[1]
    record = docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout
    before = _live(drill_hosts)
    try:
        client.put_object(Bucket=BUCKET, Key=latest, Body=damaged, Metadata=meta)
        client.put_object(Bucket=BUCKET, Key=f"{latest}.sha256", Body=f"{digest}  {name}\n")
        data = [*restore_data(s3, keys)[2:], "--data", "drill_from=s3"]
        run = _run(drill_hosts, "deploys/drill.py", *data, check=False)
        assert run.returncode != 0
        assert "not signed by the recorded signer key" in run.output
        assert _live(drill_hosts) == before
        assert _left_behind(drill_hosts) == ""
        assert docker_exec(drill_hosts, BACKUP, f"cat {RECORD}").stdout == record
    finally:
        checksum = hashlib.sha256(body).hexdigest()
        client.put_object(Bucket=BUCKET, Key=latest, Body=body, Metadata=meta)
        client.put_object(Bucket=BUCKET, Key=f"{latest}.sha256", Body=f"{checksum}  {name}\n")


def test_bad_drill_settings_are_refused_before_any_host_is_touched(drill_hosts: Scenario) -> None:
    before = _live(drill_hosts)
    for data, problem in (
        ("drill_host=etcd-k8s-3", "is no cert-manager"),
        (f"drill_host={PRIMARY}", "runs the live CA"),
        ("drill_port=2379", "is a port of the live CA or etcd"),
    ):
        run = _run(drill_hosts, "deploys/drill.py", "--data", data, check=False)
        assert run.returncode != 0 and problem in run.output, run.output[-2000:]
    assert _live(drill_hosts) == before
