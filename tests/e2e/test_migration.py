"""deploys/migrate_cfssl.py: a running cluster made with real cfssl (Debian's golang-cfssl,
the 1.2 series) moves to step-ca while a client writes to it, without a failed write."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyinfra.api import Inventory

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.settings import settings_for
from etcd_step_pki.operations.etcd.configuration import TLSFiles, member_config
from etcd_step_pki.templates import render
from tests.conftest import fresh_scenario
from tests.harness.artifacts import VERSIONS
from tests.harness.hosts import Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra
from tests.harness.writer import ContinuousWriter

pytestmark = pytest.mark.e2e

SSL = "/etc/etcd/ssl"
MEMBERS = ("etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3")
MIGRATE = "deploys/migrate_cfssl.py"
CSR = '{"CN": "%s", "key": {"algo": "rsa", "size": 2048}}'
CONFIG = json.dumps({"signing": {"default": {"expiry": "8760h"}, "profiles": {
    "peer": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth", "client auth"]},
    "server": {"expiry": "8760h", "usages": ["signing", "key encipherment", "server auth", "client auth"]},
    "client": {"expiry": "8760h", "usages": ["signing", "key encipherment", "client auth"]},
}}})  # fmt: skip


def _settings(scenario: Scenario) -> dict:
    hosts = scenario.hosts
    groups: dict[str, tuple[list[str], dict]] = {}
    for h in hosts:
        for group in h.groups:
            groups.setdefault(group, ([], {}))[0].append(h.name)
    inventory = Inventory(([(h.name, {"ssh_hostname": h.address}) for h in hosts], {}), **groups)
    return {h.name: settings_for(inventory.get_host(h.name), inventory) for h in hosts}


def _copy(scenario: Scenario, source: str, path: str, target: str, mode: str) -> None:
    data = subprocess.run(["docker", "exec", scenario.container(source), "cat", path],
                          capture_output=True, check=True).stdout  # fmt: skip
    name = path.rsplit("/", 1)[1]
    subprocess.run(["docker", "exec", "-i", scenario.container(target), "sh", "-c",
                    f"cat > {SSL}/{name} && chown etcd:etcd {SSL}/{name} && chmod {mode} {SSL}/{name}"],
                   input=data, check=True)  # fmt: skip


def _legacy_cluster(scenario: Scenario, archives: Path) -> None:
    """What the earlier (Ansible + cfssl) deployment left: separate peer and client CAs,
    RSA 2048 *.pem in /etc/etcd/ssl, and a running cluster that uses them."""
    ca_host = "etcd-k8s-1"
    docker_exec(scenario, ca_host, "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y -q golang-cfssl >/dev/null")  # fmt: skip
    work = "/root/cfssl"
    script = [f"set -e; mkdir -p {work}; cd {work}; echo '{CONFIG}' > config.json"]
    for ca in ("peer-ca", "client-ca"):
        script.append(
            f"echo '{CSR % ca}' | cfssl gencert -initca - 2>/dev/null | cfssljson -bare {ca}"
        )
    for host in scenario.hosts:
        kinds = ("peer", "server", "client") if "etcd" in host.groups else ("client",)
        names = f"{host.name},{host.fqdn},{host.address},localhost,127.0.0.1"
        for kind in kinds:
            ca = "peer-ca" if kind == "peer" else "client-ca"
            script.append(
                f"echo '{CSR % host.name}' | cfssl gencert -ca {ca}.pem -ca-key {ca}-key.pem"
                f" -config config.json -profile {kind} -hostname {names} - 2>/dev/null"
                f" | cfssljson -bare {host.name}-{kind}"
            )
    docker_exec(scenario, ca_host, "; ".join(script))
    key_size = docker_exec(scenario, ca_host, f"openssl x509 -in {work}/peer-ca.pem -noout -text")
    assert "(2048 bit)" in key_size.stdout

    settings = _settings(scenario)
    archive = next(archives.glob(f"etcd-v{VERSIONS['etcd']}-linux-amd64.tar.gz"))
    peers = ",".join(f"{h}={'https://' + settings[h].address}:2380" for h in MEMBERS)
    for host in scenario.hosts:
        docker_exec(scenario, host.name, f"useradd --system --home /var/lib/etcd --shell /usr/sbin/nologin etcd;"
                    f" install -d -m 0755 {SSL} /etc/etcd /opt/bin")  # fmt: skip
        for ca in ("peer-ca", "client-ca"):
            _copy(scenario, ca_host, f"{work}/{ca}.pem", host.name, "0644")
        kinds = ("peer", "server", "client") if host.name in MEMBERS else ("client",)
        for kind in kinds:
            _copy(scenario, ca_host, f"{work}/{host.name}-{kind}.pem", host.name, "0644")
            _copy(scenario, ca_host, f"{work}/{host.name}-{kind}-key.pem", host.name, "0400")
        subprocess.run(["docker", "cp", str(archive.resolve()),
                        f"{scenario.container(host.name)}:/tmp/etcd.tar.gz"], check=True)  # fmt: skip
        docker_exec(scenario, host.name, "tar -xzf /tmp/etcd.tar.gz -C /tmp && "
                    "install -m 0755 /tmp/etcd-v*/etcd /tmp/etcd-v*/etcdctl /tmp/etcd-v*/etcdutl /opt/bin/")  # fmt: skip
    for name in MEMBERS:
        s = settings[name]
        tls = TLSFiles(f"{SSL}/{name}-peer.pem", f"{SSL}/{name}-peer-key.pem",
                       f"{SSL}/{name}-server.pem", f"{SSL}/{name}-server-key.pem",
                       f"{SSL}/peer-ca.pem", f"{SSL}/client-ca.pem")  # fmt: skip
        config = member_config(arguments.member(s), arguments.member_options(s, tls), peers, "new")
        unit = render("etcd-member.service.j2", member=name, run_as="etcd", etcd="/opt/bin/etcd",
                      config=s.member_file("env"), data_dir=s.data_dir)  # fmt: skip
        docker_exec(scenario, name, f"cat > {s.member_file('env')}", input=config)
        docker_exec(scenario, name, f"cat > /etc/systemd/system/{s.unit}", input=unit)
        docker_exec(scenario, name, f"install -d -o etcd -g etcd -m 0700 /var/lib/etcd {s.data_dir};"
                    f" systemctl daemon-reload; systemctl enable {s.unit}; systemctl start --no-block {s.unit}")  # fmt: skip
    health = (f"for i in $(seq 120); do /opt/bin/etcdctl --endpoints=https://127.0.0.1:2379"
              f" --cacert={SSL}/client-ca.pem --cert={SSL}/etcd-k8s-1-client.pem"
              f" --key={SSL}/etcd-k8s-1-client-key.pem endpoint health --cluster >/dev/null 2>&1"
              " && exit 0; sleep 0.5; done; exit 1")  # fmt: skip
    docker_exec(scenario, "etcd-k8s-1", health)


def Writer(scenario: Scenario) -> ContinuousWriter:
    """client-1 writing all along, with whatever trust and certificate it has at each write:
    the cfssl files at first, the bundle and the step-ca certificate once they are there."""
    endpoints = ",".join(f"https://{h}:2379" for h in MEMBERS)
    put = (
        f"d={SSL}; ca=$d/client-ca.crt; [ -e $ca ] || ca=$d/client-ca.pem;"
        " c=$d/client-1-client.crt; k=$d/client-1-client.key;"
        " [ -e $c ] || { c=$d/client-1-client.pem; k=$d/client-1-client-key.pem; };"
        f" /opt/bin/etcdctl --endpoints={endpoints} --cacert=$ca --cert=$c --key=$k"
        " put /migration/$i $i"
    )
    return ContinuousWriter(scenario, "client-1", put)


@pytest.fixture(scope="module")
def legacy(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-migrate", "172.28.76.0/24", release_archives)
    with scenario_hosts(scenario) as started:
        _legacy_cluster(started, release_archives)
        yield started


def _issuer(scenario: Scenario, member: str) -> str:
    address = scenario.host(member).address
    out = docker_exec(
        scenario, "etcd-k8s-2",
        f"echo | openssl s_client -connect {address}:2379 -cert {SSL}/etcd-k8s-2-client.crt"
        f" -key {SSL}/etcd-k8s-2-client.key -CAfile {SSL}/root_ca.crt 2>/dev/null"
        " | openssl x509 -noout -issuer",
    )  # fmt: skip
    return out.stdout.strip()


def test_migration_without_a_failed_write_and_resumable(legacy: Scenario) -> None:
    with Writer(legacy) as writer:
        # Stopped after the bundle step, as an interrupted run would be...
        first = run_pyinfra(legacy, MIGRATE, "--data", "cfssl_migration_stop_after=bundle")
        for host in ("etcd-k8s-3", "client-1"):
            marker = docker_exec(legacy, host, "cat /var/lib/etcd-step-pki/cfssl-migration").stdout
            assert marker.strip() == "bundle"
            bundle = docker_exec(legacy, host, f"grep -c BEGIN {SSL}/client-ca.crt").stdout
            assert bundle.strip() == "2"  # the new root and the old client CA
        assert "etcd-k8s-3" in first.changes
        # ...and the next run completes it.
        run_pyinfra(legacy, MIGRATE)
    assert writer.writes > 20
    assert writer.failed == 0

    for member in MEMBERS:
        assert "Intermediate CA" in _issuer(legacy, member), member
    for host in legacy.hosts:
        left = docker_exec(legacy, host.name, f"ls {SSL} | grep -c '\\.pem$' || true").stdout
        assert left.strip() == "0", host.name
        links = docker_exec(
            legacy, host.name, f"readlink {SSL}/peer-ca.crt {SSL}/client-ca.crt"
        ).stdout
        assert links.split() == ["root_ca.crt", "root_ca.crt"]
    health = docker_exec(legacy, "etcd-k8s-1",
                         f"/opt/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert={SSL}/root_ca.crt"
                         f" --cert={SSL}/etcd-k8s-1-client.crt --key={SSL}/etcd-k8s-1-client.key"
                         " endpoint health --cluster")  # fmt: skip
    assert health.stdout.count("is healthy") == 3
    assert run_pyinfra(legacy, MIGRATE).changes == {}
    # From here on the cluster is this tool's like any other.
    run_pyinfra(legacy, "deploys/cluster.py")
    assert run_pyinfra(legacy, "deploys/cluster.py").changes == {}
