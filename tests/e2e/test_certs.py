"""deploys/certs.py after deploys/ca.py: trust, certificates and renewal on every node, issued
only when needed, renewed for real by systemd, secrets kept out of output and `ps`."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.hosts import ROOT_RECORD, Scenario, docker_exec, scenario_hosts
from tests.harness.processes import ProcessSampler
from tests.harness.pyinfra_run import PyinfraRun, run_pyinfra

pytestmark = pytest.mark.e2e

SSL = "/etc/etcd/ssl"
MEMBERS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
CERTS = "Node certificates | Trust and certificates"
JWT_PREFIX = "eyJ"  # every one-time token (a JWT) starts with this
# A signed token (header.payload.signature, both JSON): not the provisioner's encrypted key,
# a JWE that step-ca serves to anyone and that ca.json, printed at -vvv, holds.
TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.")


def _certs(host: str) -> list[tuple[str, str]]:
    kinds = ("peer", "server", "client") if host in MEMBERS else ("client",)
    return [(host, kind) for kind in kinds]


def _all_certs(scenario: Scenario) -> list[tuple[str, str]]:
    return [pair for h in scenario.hosts for pair in _certs(h.name)]


def _serial(scenario: Scenario, host: str, kind: str) -> str:
    cmd = f"openssl x509 -in {SSL}/{host}-{kind}.crt -noout -serial"
    return docker_exec(scenario, host, cmd).stdout.strip()


def _serials(scenario: Scenario) -> dict[tuple[str, str], str]:
    return {pair: _serial(scenario, *pair) for pair in _all_certs(scenario)}


def _unit(scenario: Scenario, host: str, unit: str, prop: str) -> str:
    return docker_exec(scenario, host, f"systemctl show {unit} -p {prop} --value").stdout.strip()


@pytest.fixture(scope="module")
def certs_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-certs", "172.28.65.0/24", release_archives)
    with scenario_hosts(scenario) as started:
        yield started


@pytest.fixture(scope="module")
def deployed(certs_hosts: Scenario) -> dict[str, object]:
    """ca.py then certs.py from bare hosts, with process arguments sampled on a member, a
    client and the primary (where the tokens are minted)."""
    ca = run_pyinfra(certs_hosts, "deploys/ca.py")
    with (
        ProcessSampler(certs_hosts, "etcd-k8s-1") as primary,
        ProcessSampler(certs_hosts, "etcd-k8s-3") as member,
        ProcessSampler(certs_hosts, "client-1") as client,
    ):
        certs = run_pyinfra(certs_hosts, "deploys/certs.py")
    return {"runs": [ca, certs], "ps": primary.text() + member.text() + client.text()}


def test_files_owners_modes_and_links(certs_hosts: Scenario, deployed) -> None:
    for host in certs_hosts.hosts:
        listing = docker_exec(
            certs_hosts, host.name, f"find {SSL} -mindepth 1 -printf '%P %m %u:%g %l\\n'"
        ).stdout
        entries = {line.split()[0]: line.split()[1:] for line in listing.splitlines()}
        for _, kind in _certs(host.name):
            # The names lead through the pair's link to its one generation, root's.
            base = f"{host.name}-{kind}"
            assert entries[f"{base}.crt"] == ["777", "root:root", f"{base}.pair/crt"]
            assert entries[f"{base}.key"] == ["777", "root:root", f"{base}.pair/key"]
            generation = entries[f"{base}.pair"][-1]
            generations = [n for n in entries if n.startswith(f".{base}.") and "/" not in n]
            assert generations == [generation]
            assert entries[generation] == ["755", "root:root"]
            assert entries[f"{generation}/crt"] == ["644", "etcd:etcd"]
            assert entries[f"{generation}/key"] == ["400", "etcd:etcd"]
        assert entries["root_ca.crt"] == ["644", "root:root"]
        for link in ("peer-ca.crt", "client-ca.crt"):
            assert entries[link][-1] == "root_ca.crt"
        # The node's root is the CA's root.
        root = docker_exec(certs_hosts, host.name, f"cat {SSL}/root_ca.crt").stdout
        assert (
            root
            == docker_exec(certs_hosts, "etcd-k8s-1", "cat /etc/step-ca/certs/root_ca.crt").stdout
        )
        defaults = json.loads(
            docker_exec(certs_hosts, host.name, "cat /etc/step/config/defaults.json").stdout
        )
        assert defaults["ca-url"] == "https://etcd-k8s-1:9000"


def test_certificates_verify_and_carry_the_sans(certs_hosts: Scenario, deployed) -> None:
    for host in certs_hosts.hosts:
        for _, kind in _certs(host.name):
            crt = f"{SSL}/{host.name}-{kind}.crt"
            verify = docker_exec(
                certs_hosts,
                host.name,
                f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}",
            )
            assert verify.stdout.strip() == f"{crt}: OK"
            text = docker_exec(
                certs_hosts,
                host.name,
                f"openssl x509 -in {crt} -noout -subject -ext subjectAltName,extendedKeyUsage",
            ).stdout
            # Every peer of the cluster has the same subject; the others have the host's.
            assert f"CN = {'etcd-k8s-peer' if kind == 'peer' else host.name}" in text
            for san in (f"DNS:{host.name}", "DNS:localhost", f"IP Address:{host.address}",
                        "IP Address:127.0.0.1"):  # fmt: skip
                assert san in text, (host.name, kind, san)
            # Names come from the inventory only, never from what the host calls itself.
            assert host.fqdn not in text, (host.name, kind)
            # A client certificate authenticates a client only (the others also renew as
            # clients of step-ca).
            assert ("TLS Web Server Authentication" in text) == (kind != "client")
            assert "TLS Web Client Authentication" in text
            # Only a client certificate opens the cluster's client port.
            assert ("DNS:k8s.etcd-clients.invalid" in text) == (kind == "client")
            # Two years by default: 17520h.
            days = docker_exec(
                certs_hosts, host.name, f"openssl x509 -in {crt} -noout -checkend {86400 * 729}"
            )
            assert days.returncode == 0


def test_keys_were_made_on_the_node_and_never_travelled(certs_hosts: Scenario, deployed) -> None:
    runs: list[PyinfraRun] = deployed["runs"]
    for run in runs:
        assert "PRIVATE KEY" not in run.output
        assert JWT_PREFIX not in run.output
    # No token, no provisioner password in any process's arguments on the primary, a member
    # or a client while certificates were issued.
    ps = deployed["ps"]
    assert "step ca certificate" in ps and "step ca token" in ps
    assert JWT_PREFIX not in ps
    password = docker_exec(
        certs_hosts, "etcd-k8s-1", "cat /etc/step-ca/secrets/provisioner_password"
    ).stdout.strip()
    assert password not in ps and all(password not in r.output for r in runs)
    # Only cert-managers hold a provisioner password; nothing of the tokens is left behind.
    for host in ("etcd-k8s-3", "client-1"):
        assert docker_exec(certs_hosts, host, "test -e /etc/step-ca", check=False).returncode
        assert docker_exec(certs_hosts, host, "ls -A /run/etcd-step-pki").stdout == ""


def test_renewal_timers_are_enabled_and_active(certs_hosts: Scenario, deployed) -> None:
    for host, kind in _all_certs(certs_hosts):
        timer = f"step-renew-{host}-{kind}.timer"
        assert _unit(certs_hosts, host, timer, "ActiveState") == "active"
        assert _unit(certs_hosts, host, timer, "UnitFileState") == "enabled"
        on_calendar = docker_exec(
            certs_hosts, host, f"systemctl cat {timer} | grep -E '^(OnCalendar|Persistent)='"
        ).stdout.split()
        assert on_calendar == ["OnCalendar=*-*-*", "03:00:00", "Persistent=true"]


def test_second_run_changes_nothing(certs_hosts: Scenario, deployed) -> None:
    before = _serials(certs_hosts)
    assert run_pyinfra(certs_hosts, "deploys/certs.py").changes == {}
    assert run_pyinfra(certs_hosts, "deploys/ca.py").changes == {}
    assert _serials(certs_hosts) == before


def test_renewal_units_write_textfile_metrics(certs_hosts: Scenario, deployed) -> None:
    textfiles = "/var/lib/prometheus/node-exporter"
    metrics = ["--data", f"metrics_textfile_dir={textfiles}", "--limit", "client-1"]
    run = run_pyinfra(certs_hosts, "deploys/certs.py", *metrics)
    assert run.changes == {"client-1": ["Node certificates | Renewal metrics helper",
                                        "Node certificates | Renewal metrics of every certificate",
                                        "Node certificates | CA probe",
                                        "Node certificates | Renewal units"]}  # fmt: skip
    # Written by the run already, before any renewal unit ran (the CA probe's, by its timer
    # a second after the run started it).
    first = docker_exec(certs_hosts, "client-1", f"ls {textfiles}").stdout.split()
    assert "etcd_pki_client-1-client.prom" in first
    assert set(first) <= {"etcd_pki_client-1-client.prom", "etcd_pki_ca_probe.prom"}
    unit = "step-renew-client-1-client.service"
    docker_exec(certs_hosts, "client-1", f"systemctl start {unit}", check=False)
    assert _unit(certs_hosts, "client-1", unit, "Result") == "exec-condition"  # not due: skipped
    text = docker_exec(
        certs_hosts, "client-1", f"cat {textfiles}/etcd_pki_client-1-client.prom"
    ).stdout
    end = docker_exec(
        certs_hosts, "client-1",
        f"date -d \"$(openssl x509 -enddate -noout -in {SSL}/client-1-client.crt | cut -d= -f2)\" +%s",
    ).stdout.strip()  # fmt: skip
    labels = f'host="client-1",kind="client",file="{SSL}/client-1-client.crt"'
    assert f"etcd_pki_certificate_not_after_timestamp_seconds{{{labels}}} {end}" in text
    assert f"etcd_pki_ca_up{{{labels}}} 1" in text
    assert run_pyinfra(certs_hosts, "deploys/certs.py", *metrics).changes == {}
    assert set(run_pyinfra(certs_hosts, "deploys/certs.py").changes) == {"client-1"}


def _decrypted_provisioner_key(scenario: Scenario) -> str:
    """The private part ("d") of the provisioner key, decrypted on the primary as the token
    minting does: what must never show."""
    config = json.loads(
        docker_exec(scenario, "etcd-k8s-1", "cat /etc/step-ca/config/ca.json").stdout
    )
    (base,) = [p for p in config["authority"]["provisioners"] if p["name"] == "etcd-pki"]
    jwk = docker_exec(
        scenario, "etcd-k8s-1",
        f"printf %s {base['encryptedKey']} | /opt/bin/step crypto jwe decrypt"
        " --password-file /etc/step-ca/secrets/provisioner_password",
    ).stdout  # fmt: skip
    return str(json.loads(jwk)["d"])


def test_no_secret_at_any_verbosity(certs_hosts: Scenario, deployed) -> None:
    """certs.py issuing certificates with `-vvv --debug`: no password, no decrypted key, no
    token in pyinfra's output or in any host's journal (but step-ca's, which logs a token
    once it has used it)."""
    for host, kind in (("etcd-k8s-3", "client"), ("client-1", "client")):
        docker_exec(certs_hosts, host, f"rm {SSL}/{host}-{kind}.crt")
    since = docker_exec(certs_hosts, "etcd-k8s-1", "date +%s").stdout.strip()
    run = run_pyinfra(certs_hosts, "deploys/certs.py", "-vvv", "--debug")
    assert {"etcd-k8s-3", "client-1"} <= set(run.changes)
    secrets = {
        name: docker_exec(certs_hosts, "etcd-k8s-1", f"cat /etc/step-ca/secrets/{name}").stdout
        for name in ("password", "provisioner_password")
    }
    secrets["decrypted provisioner key"] = _decrypted_provisioner_key(certs_hosts)
    assert "[pyinfra.api" in run.output  # debug logging was on
    for name, value in secrets.items():
        assert value.strip() and value.strip() not in run.output, name
    assert not TOKEN.search(run.output)
    for host in certs_hosts.hosts:
        journal = docker_exec(
            certs_hosts, host.name,
            f"journalctl --no-pager -o short --since @{since} | grep -v ' step-ca\\[' || true",
        ).stdout  # fmt: skip
        for name, value in secrets.items():
            assert value.strip() not in journal, (host.name, name)
        assert not TOKEN.search(journal), host.name


def test_deleted_damaged_or_short_of_a_san_is_reissued_alone(
    certs_hosts: Scenario, deployed
) -> None:
    before = _serials(certs_hosts)
    docker_exec(certs_hosts, "etcd-k8s-3", f"rm {SSL}/etcd-k8s-3-server.crt")
    docker_exec(certs_hosts, "client-1", f"head -c 200 {SSL}/client-1-client.crt > /tmp/x && "
                f"cat /tmp/x > {SSL}/client-1-client.crt")  # fmt: skip
    # A certificate of the right CA that lacks the host's address and names another member
    # (as a host that claims another's name would have had it), made by hand with the
    # cluster's peer provisioner (whose policy allows every name of the cluster).
    token = docker_exec(
        certs_hosts,
        "etcd-k8s-1",
        "STEPPATH=/etc/step-ca /opt/bin/step ca token etcd-k8s-2 --san etcd-k8s-2 "
        "--san etcd-k8s-1 --provisioner etcd-pki-k8s-peer --provisioner-password-file "
        "/etc/step-ca/secrets/provisioner_password --ca-url https://etcd-k8s-1:9000 "
        "--root /etc/step-ca/certs/root_ca.crt",
    ).stdout.strip()
    docker_exec(
        certs_hosts,
        "etcd-k8s-2",
        f'cd {SSL} && STEP_TOKEN="$(cat)" STEPPATH=/etc/step /opt/bin/step ca certificate '
        "etcd-k8s-2 short.crt short.key --force >/dev/null 2>&1 && "
        "mv short.crt etcd-k8s-2-peer.crt && mv short.key etcd-k8s-2-peer.key && "
        "chown etcd:etcd etcd-k8s-2-peer.* && chmod 0400 etcd-k8s-2-peer.key",
        input=token,
    )
    before[("etcd-k8s-2", "peer")] = _serial(certs_hosts, "etcd-k8s-2", "peer")

    run = run_pyinfra(certs_hosts, "deploys/certs.py")
    assert run.changes == {h: [CERTS] for h in ("etcd-k8s-2", "etcd-k8s-3", "client-1")}
    after = _serials(certs_hosts)
    reissued = {pair for pair in before if before.get(pair) != after[pair]}
    assert reissued == {("etcd-k8s-3", "server"), ("client-1", "client"), ("etcd-k8s-2", "peer")}
    sans = docker_exec(
        certs_hosts,
        "etcd-k8s-2",
        f"openssl x509 -in {SSL}/etcd-k8s-2-peer.crt -noout -ext subjectAltName",
    ).stdout
    address = certs_hosts.host("etcd-k8s-2").address
    assert f"IP Address:{address}" in sans and "DNS:etcd-k8s-1" not in sans
    assert run_pyinfra(certs_hosts, "deploys/certs.py").changes == {}


SHORT = [
    "--data", "step_cert_default_duration=2m",
    "--data", "step_cert_min_duration=1m",
    "--data", "renewal_expires_in=5%",
]  # fmt: skip


def _renew(scenario: Scenario, host: str, kind: str) -> str:
    unit = f"step-renew-{host}-{kind}.service"
    docker_exec(scenario, host, f"systemctl start {unit}", check=False)
    return _unit(scenario, host, unit, "Result")


def test_renewal_by_systemd_renews_what_is_due_and_skips_the_rest(
    certs_hosts: Scenario, deployed
) -> None:
    host = "etcd-k8s-3"
    # Certificates of two minutes, due after 5% of their lifetime (6 s).
    configured = run_pyinfra(certs_hosts, "deploys/ca.py", *SHORT)
    assert "step-ca | Configure ca.json and file modes" in configured.changes["etcd-k8s-1"]
    docker_exec(certs_hosts, host, f"rm {SSL}/{host}-peer.crt")
    run_pyinfra(certs_hosts, "deploys/certs.py", *SHORT)
    key_before = docker_exec(certs_hosts, host, f"sha256sum {SSL}/{host}-peer.key").stdout
    serial = _serial(certs_hosts, host, "peer")
    server_serial = _serial(certs_hosts, host, "server")
    time.sleep(8)

    assert _renew(certs_hosts, host, "peer") == "success"
    assert _serial(certs_hosts, host, "peer") != serial
    assert docker_exec(certs_hosts, host, f"sha256sum {SSL}/{host}-peer.key").stdout == key_before
    modes = docker_exec(
        certs_hosts, host, f"stat -L -c '%a %U' {SSL}/{host}-peer.crt {SSL}/{host}-peer.key"
    )
    assert modes.stdout.split() == ["644", "etcd", "400", "etcd"]
    crt = f"{SSL}/{host}-peer.crt"
    verify = docker_exec(
        certs_hosts, host, f"openssl verify -CAfile {SSL}/root_ca.crt -untrusted {crt} {crt}"
    )
    assert verify.stdout.strip().endswith("OK")

    # The two-year server certificate is not due: ExecCondition skips the run.
    assert _renew(certs_hosts, host, "server") == "exec-condition"
    assert _serial(certs_hosts, host, "server") == server_serial


def test_a_failed_renewal_is_visible_and_keeps_the_old_certificate(
    certs_hosts: Scenario, deployed
) -> None:
    host = "etcd-k8s-3"
    docker_exec(certs_hosts, "etcd-k8s-1", "systemctl stop step-ca")
    try:
        time.sleep(7)  # the renewed two-minute certificate is due again
        before = docker_exec(certs_hosts, host, f"sha256sum {SSL}/{host}-peer.crt").stdout
        assert _renew(certs_hosts, host, "peer") == "exit-code"
        unit = f"step-renew-{host}-peer.service"
        assert _unit(certs_hosts, host, unit, "ActiveState") == "failed"
        assert docker_exec(certs_hosts, host, f"sha256sum {SSL}/{host}-peer.crt").stdout == before
        assert docker_exec(
            certs_hosts, host, f"test -e {SSL}/{host}-peer.pair/crt.new", check=False
        ).returncode
        report = run_pyinfra(certs_hosts, "deploys/status.py", *SHORT, "--limit", host, check=False)
        line = next(x for x in report.stdout.splitlines() if x.startswith(f"{host} peer:"))
        assert "last-renewal=FAILED" in line
        assert report.returncode != 0
        assert f"{host} peer certificate: the last renewal failed" in report.output
    finally:
        docker_exec(certs_hosts, "etcd-k8s-1", "systemctl start step-ca")
    docker_exec(
        certs_hosts,
        "etcd-k8s-1",
        "for i in $(seq 50); do curl -sfk https://localhost:9000/health && break; sleep 0.2; done",
    )
    serial = _serial(certs_hosts, host, "peer")
    assert _renew(certs_hosts, host, "peer") == "success"
    assert _serial(certs_hosts, host, "peer") != serial
    assert _unit(certs_hosts, host, f"step-renew-{host}-peer.service", "ActiveState") == "inactive"


def test_back_to_defaults_converges(certs_hosts: Scenario, deployed) -> None:
    run_pyinfra(certs_hosts, "deploys/ca.py")
    run_pyinfra(certs_hosts, "deploys/certs.py")
    assert run_pyinfra(certs_hosts, "deploys/certs.py").changes == {}


def test_without_the_roots_record_no_root_is_trusted(certs_hosts: Scenario, deployed) -> None:
    """A fresh checkout or another controller lacks the record of the root: a run trusts no
    root then (only the run that initialises a CA records its root), and says how to record
    it; accepting it on purpose writes the record, and changes nothing else."""
    record = certs_hosts.state_dir / ROOT_RECORD
    kept = record.read_text()
    serials = _serials(certs_hosts)
    record.unlink()
    try:
        for deploy in ("deploys/certs.py", "deploys/cluster.py"):
            refused = run_pyinfra(certs_hosts, deploy, check=False)
            assert refused.returncode != 0
            assert f"nothing pins the root this inventory trusts: {record} is missing" in (
                refused.output
            )
            assert f"step_ca_root_fingerprint={kept.strip()}" in refused.output
            assert refused.changes == {} and not record.exists()
        accepted = run_pyinfra(certs_hosts, "deploys/certs.py", "--data", "ca_accept_new_root=true")
        assert accepted.changes == {}
        assert record.read_text() == kept
        assert _serials(certs_hosts) == serials
    finally:
        record.write_text(kept)


def test_a_root_other_than_the_recorded_one_is_refused(certs_hosts: Scenario, deployed) -> None:
    """The first run recorded the root on the controller; a CA replaced behind the operator's
    back (a new root) is refused before any node trusts it, and nothing changes."""
    record = certs_hosts.state_dir / ROOT_RECORD
    root = f"{SSL}/root_ca.crt"
    fingerprint = docker_exec(certs_hosts, "client-1", f"openssl x509 -in {root} -outform DER"
                              " | sha256sum | cut -c1-64").stdout.strip()  # fmt: skip
    assert record.read_text().strip() == fingerprint
    before = {h.name: docker_exec(certs_hosts, h.name, f"sha256sum {root}").stdout
              for h in certs_hosts.hosts}  # fmt: skip
    serials = _serials(certs_hosts)
    docker_exec(certs_hosts, "etcd-k8s-1",
                "systemctl stop step-ca && mv /etc/step-ca /root/step-ca.kept")  # fmt: skip
    try:
        run_pyinfra(certs_hosts, "deploys/ca.py")  # a new CA, with a new root
        refused = run_pyinfra(certs_hosts, "deploys/certs.py", check=False)
        assert refused.returncode != 0
        assert f"not the pinned {fingerprint} (recorded in {record})" in refused.output
        assert "ca_accept_new_root=true" in refused.output
        assert refused.changes == {}
        for host in certs_hosts.hosts:
            assert (
                docker_exec(certs_hosts, host.name, f"sha256sum {root}").stdout == before[host.name]
            )
        assert _serials(certs_hosts) == serials
        assert record.read_text().strip() == fingerprint
    finally:
        docker_exec(certs_hosts, "etcd-k8s-1", "systemctl stop step-ca; rm -rf /etc/step-ca;"
                    " mv /root/step-ca.kept /etc/step-ca; systemctl start step-ca")  # fmt: skip
    # The pinned CA back, the same runs converge with nothing to change.
    run_pyinfra(certs_hosts, "deploys/ca.py")
    assert run_pyinfra(certs_hosts, "deploys/certs.py").changes == {}
