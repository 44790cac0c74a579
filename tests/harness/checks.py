"""Assertions on the test hosts' real state, shared by the end-to-end tests."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from tests.harness.hosts import Scenario, docker_exec

SSL = "/etc/etcd/ssl"

# Everything a deploy may change on a host, as one text: the files of the CA, of etcd's
# configuration and certificates, of the step CLI, the units and binaries, this tool's
# records and snapshots (checksums, owners, modes), the state of every unit of ours, and
# what is left in /run by this tool.
_STATE = (
    "for d in /etc/step-ca /etc/etcd /etc/step /etc/systemd/system /opt/bin"
    " /var/lib/etcd-step-pki /var/backups/etcd; do [ -e $d ] || continue;"
    " find $d -xdev \\( -type f -o -type l \\) -printf '%p %m %u:%g %l\\n' | sort;"
    " find $d -xdev -type f -print0 | sort -z | xargs -0 -r sha256sum; done;"
    " ls -d /var/lib/etcd/* 2>/dev/null;"
    " systemctl list-units --all --plain --no-legend 'step*' 'etcd*'"
    " | awk '{print $1, $3, $4}' | grep -v '^step-renew.*service inactive' ;"
    " systemctl list-unit-files --plain --no-legend 'step*' 'etcd*' | awk '{print $1, $2}';"
    " ls -la /run/etcd-step-pki 2>/dev/null | awk '{print $1, $NF}'"
)


def etcdctl(host: str, *args: str, endpoints: str = "https://127.0.0.1:2379") -> str:
    """etcdctl on `host` with that host's client certificate."""
    return (
        f"/opt/bin/etcdctl --endpoints={endpoints} --cacert={SSL}/root_ca.crt "
        f"--cert={SSL}/{host}-client.crt --key={SSL}/{host}-client.key " + " ".join(args)
    )


def cluster_healthy(scenario: Scenario, via: str = "etcd-k8s-1") -> bool:
    """Every member answers healthy, as `via` sees the cluster."""
    out = docker_exec(scenario, via, etcdctl(via, "endpoint health --cluster -w json"), check=False)
    return out.returncode == 0 and all(h["health"] for h in json.loads(out.stdout))


def members(scenario: Scenario, via: str = "etcd-k8s-1") -> dict[str, str]:
    """`{member name: member id}` as `via` sees the cluster."""
    out = docker_exec(scenario, via, etcdctl(via, "member list -w json")).stdout
    return {m["name"]: format(m["ID"], "x") for m in json.loads(out)["members"]}


def renews_by_hand(scenario: Scenario, host: str, kind: str) -> None:
    """A certificate of `host` renews over mTLS by hand: a new serial, same key file."""
    crt, key = f"{SSL}/{host}-{kind}.crt", f"{SSL}/{host}-{kind}.key"
    serial = f"openssl x509 -in {crt} -noout -serial"
    before = docker_exec(scenario, host, serial).stdout
    docker_exec(scenario, host, f"STEPPATH=/etc/step /opt/bin/step ca renew --force {crt} {key}"
                " >/dev/null 2>&1")  # fmt: skip
    assert docker_exec(scenario, host, serial).stdout != before


def host_state(scenario: Scenario, host: str) -> str:
    """What a deploy may change on `host` (see _STATE), to compare before and after."""
    return docker_exec(scenario, host, _STATE, check=False).stdout


def etcd_versions(scenario: Scenario, members: Sequence[str]) -> dict[str, str]:
    """Each member's installed etcd release, and the cluster's version as the first answers
    (etcd's `/version`, with that member's client certificate)."""
    found = {
        h: docker_exec(scenario, h, "/opt/bin/etcd --version | head -1").stdout.split()[-1]
        for h in members
    }
    first = members[0]
    answer = docker_exec(
        scenario, first, f"curl -fsS --cacert {SSL}/root_ca.crt --cert {SSL}/{first}-client.crt"
        f" --key {SSL}/{first}-client.key https://127.0.0.1:2379/version"
    ).stdout  # fmt: skip
    return {**found, "cluster": json.loads(answer)["etcdcluster"]}


def wait_for_cluster_version(
    scenario: Scenario, members: Sequence[str], version: str, timeout: float = 30
) -> None:
    """etcd's leader raises the cluster's version within seconds of the last member."""
    deadline = time.monotonic() + timeout
    while etcd_versions(scenario, members)["cluster"] != version and time.monotonic() < deadline:
        time.sleep(1)
