"""Docker test hosts that boot systemd and run sshd, as stand-ins for an operator's servers.

A scenario names its hosts, their groups and fixed addresses on a bridge network of its own.
`write_scenario` lays out its state directory (compose file, SSH key, `hosts.json` that
`inventories/sandbox.py` reads); `scenario_hosts` starts the hosts through pytest-docker and
always removes them afterwards.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pytest_docker.plugin import get_docker_services

REPO = Path(__file__).resolve().parents[2]
HOSTS_DIR = REPO / "tests" / "hosts"
DOMAIN = "sandbox.test"
READY_TIMEOUT = 60.0  # and 5 s more a host: many systemd hosts boot slowly on 2 cores


@dataclass(frozen=True)
class TestHost:
    """One test host: its inventory name, its address and the inventory groups it is in."""

    __test__ = False  # not a pytest test class

    name: str
    address: str
    groups: tuple[str, ...]

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{DOMAIN}"


@dataclass
class Scenario:
    """A set of hosts on one bridge network, with the directory that describes them."""

    project: str
    subnet: str
    hosts: list[TestHost]
    state_dir: Path
    image: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    # The SSH user of the inventory: root, or `admin` (runs then need --sudo or _sudo).
    ssh_user: str = "root"
    # A name for the CA that the hosts' own resolver answers (/etc/hosts): the first
    # cert-manager's address, until a test points it elsewhere (point_name).
    ca_name: str | None = None

    def container(self, host: str) -> str:
        return f"{self.project}-{host}"

    def host(self, name: str) -> TestHost:
        for candidate in self.hosts:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @property
    def key_file(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def compose_file(self) -> Path:
        return self.state_dir / "docker-compose.yml"


def default_hosts(subnet: str, members: int = 3, clients: int = 1) -> list[TestHost]:
    """The reference's layout: etcd-k8s-1..N (the first two are cert-managers) and clients."""
    net = ipaddress.ip_network(subnet)
    hosts = []
    for index in range(1, members + 1):
        groups = ("etcd", "etcd_cert_managers") if index <= 2 else ("etcd",)
        hosts.append(TestHost(f"etcd-k8s-{index}", str(net[10 + index]), groups))
    for index in range(1, clients + 1):
        hosts.append(TestHost(f"client-{index}", str(net[100 + index]), ("etcd_clients",)))
    return hosts


def cgroup_version() -> int:
    """2 on a unified (cgroup v2) hierarchy, which needs other container options than v1."""
    return 2 if Path("/sys/fs/cgroup/cgroup.controllers").exists() else 1


def compose_command() -> str:
    """`docker compose` (v2) where it exists, else Debian's `docker-compose` (v1)."""
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    raise RuntimeError("neither `docker compose` nor `docker-compose` is installed")


def build_image() -> str:
    """The test-host image tag; built by tests/hosts/build-image.sh when its inputs changed."""
    out = subprocess.run(
        [str(HOSTS_DIR / "build-image.sh")], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"building the test-host image failed:\n{out.stderr}")
    return out.stdout.strip().splitlines()[-1]


def _ensure_key(path: Path) -> str:
    """An ed25519 key pair for root logins; returns the public key line."""
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        path.with_suffix(".pub").write_bytes(public + b" etcd-step-pki-test\n")
    return path.with_suffix(".pub").read_text()


def _service(scenario: Scenario, host: TestHost) -> dict[str, object]:
    keys = scenario.state_dir / "authorized_keys"
    volumes = [
        f"{keys}:/root/.ssh/authorized_keys:ro",
        f"{keys}:/home/admin/.ssh/authorized_keys:ro",
    ]
    service: dict[str, object] = {
        "image": scenario.image,
        "container_name": scenario.container(host.name),
        "hostname": host.name,
        "domainname": DOMAIN,
        "cap_add": ["SYS_ADMIN"],
        "security_opt": ["seccomp=unconfined"],
        "tmpfs": ["/run", "/run/lock"],
        "stop_signal": "SIGRTMIN+3",
        "environment": {"container": "docker"},
        "labels": {"etcd-step-pki.project": scenario.project},
        "networks": {"pki": {"ipv4_address": host.address, "aliases": [host.fqdn]}},
    }
    if cgroup_version() == 2:
        # systemd needs a private, writable cgroup namespace on a unified hierarchy.
        service["cgroup"] = "private"
        volumes.append("/sys/fs/cgroup:/sys/fs/cgroup:rw")
    else:
        volumes.append("/sys/fs/cgroup:/sys/fs/cgroup:ro")
    service["volumes"] = volumes
    return service


ROOT_RECORD = "root-sha256"  # the sandbox's step_ca_root_record, in its state directory
SIGNER_RECORD = ".backup-signer.asc"  # the backup signer's record, beside it
ROOT_KEY_FILE = ".root-key.gpg"  # the encrypted root key, with ca_root_key_offline


def write_scenario(scenario: Scenario) -> None:
    """Lay out the state directory: key, compose file and the inventory's hosts.json."""
    scenario.state_dir.mkdir(parents=True, exist_ok=True)
    (scenario.state_dir / "authorized_keys").write_text(_ensure_key(scenario.key_file))
    # New hosts, a new CA: the root and backup signer recorded for the hosts before are no
    # longer theirs.
    for record in (ROOT_RECORD, SIGNER_RECORD, ROOT_KEY_FILE):
        (scenario.state_dir / record).unlink(missing_ok=True)
    compose = {
        "services": {host.name: _service(scenario, host) for host in scenario.hosts},
        "networks": {
            "pki": {
                "driver": "bridge",
                "labels": {"etcd-step-pki.project": scenario.project},
                "ipam": {"config": [{"subnet": scenario.subnet}]},
            }
        },
    }
    # JSON is YAML: no YAML library needed.
    scenario.compose_file.write_text(json.dumps(compose, indent=2))
    inventory = {
        "key": str(scenario.key_file),
        "domain": DOMAIN,
        "ssh_user": scenario.ssh_user,
        "hosts": [
            {"name": h.name, "address": h.address, "groups": list(h.groups)} for h in scenario.hosts
        ],
        **scenario.extra,
    }
    (scenario.state_dir / "hosts.json").write_text(json.dumps(inventory, indent=2))


def set_inventory(scenario: Scenario, names: Sequence[str]) -> None:
    """Let the inventory (hosts.json) list only these of the scenario's hosts, in this order
    (the first cert-manager listed is the primary)."""
    state_file = scenario.state_dir / "hosts.json"
    state = json.loads(state_file.read_text())
    by_name = {h.name: h for h in scenario.hosts}
    state["hosts"] = [
        {"name": n, "address": by_name[n].address, "groups": list(by_name[n].groups)} for n in names
    ]
    state_file.write_text(json.dumps(state, indent=2))


def set_ssh_user(scenario: Scenario, user: str) -> None:
    """Let the inventory (hosts.json) log in as `user` (root, or `admin`: runs need --sudo)."""
    state_file = scenario.state_dir / "hosts.json"
    state = json.loads(state_file.read_text())
    state["ssh_user"] = user
    state_file.write_text(json.dumps(state, indent=2))


def docker_exec(
    scenario: Scenario, host: str, command: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a shell command on a host (through `docker exec`, not SSH) for assertions."""
    out = subprocess.run(
        ["docker", "exec", "-i", scenario.container(host), "sh", "-c", command],
        capture_output=True,
        text=True,
        input=input,
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"{host}: `{command}` exited {out.returncode}\n{out.stdout}\n{out.stderr}"
        )
    return out


def _system_ready(scenario: Scenario, host: TestHost) -> bool:
    out = docker_exec(scenario, host.name, "systemctl is-system-running", check=False)
    return out.stdout.strip() in ("running", "degraded")


def _ssh_ready(scenario: Scenario, host: TestHost) -> bool:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(
            host.address,
            username=scenario.ssh_user,
            key_filename=str(scenario.key_file),
            timeout=3,
            allow_agent=False,
            look_for_keys=False,
        )
        _, stdout, _ = client.exec_command("true")
        return stdout.channel.recv_exit_status() == 0
    except (OSError, paramiko.SSHException):
        return False
    finally:
        client.close()


def wait_ready(
    scenario: Scenario, hosts: Sequence[TestHost] | None = None, *, booted: bool = True
) -> None:
    """Wait until systemd has finished booting and sshd takes the key, on every host; with
    `booted` False, until sshd takes the key (a host that boots into a unit restarting over
    and over never finishes booting)."""
    pending = list(hosts if hosts is not None else scenario.hosts)
    timeout = READY_TIMEOUT + 5 * len(pending)
    deadline = time.monotonic() + timeout
    while pending:
        pending = [
            h
            for h in pending
            if not ((not booted or _system_ready(scenario, h)) and _ssh_ready(scenario, h))
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(h.name for h in pending)
            raise RuntimeError(f"test hosts not ready after {timeout:.0f}s: {names}")
        time.sleep(0.5)


def remove_leftovers(project: str) -> None:
    """Containers and networks of an earlier run of the same project that was killed."""
    for kind in ("container", "network"):
        ids = subprocess.run(
            ["docker", kind, "ls", "-aq" if kind == "container" else "-q", "--filter",
             f"label=etcd-step-pki.project={project}"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        if ids:
            cmd = ["docker", kind, "rm"] + (["-f"] if kind == "container" else []) + ids
            subprocess.run(cmd, capture_output=True, check=False)


@contextlib.contextmanager
def scenario_hosts(scenario: Scenario) -> Iterator[Scenario]:
    """Start the scenario's hosts, wait until they are ready, and always remove them."""
    if not scenario.image:
        scenario.image = build_image()
    write_scenario(scenario)
    remove_leftovers(scenario.project)
    try:
        with get_docker_services(
            compose_command(),
            str(scenario.compose_file),
            scenario.project,
            ["up -d"],
            ["down -v --remove-orphans --timeout 5"],
        ):
            wait_ready(scenario)
            if scenario.ca_name:
                managers = [h for h in scenario.hosts if "etcd_cert_managers" in h.groups]
                point_name(scenario, scenario.ca_name, managers[0].address)
            yield scenario
    finally:
        # `up` may fail half-way, where pytest-docker runs no `down`.
        remove_leftovers(scenario.project)


def point_name(scenario: Scenario, name: str, address: str) -> None:
    """Make every host's resolver answer `name` with `address` (its /etc/hosts), as an
    operator's DNS change would."""
    line = f"{address} {name}"
    for test_host in scenario.hosts:
        docker_exec(
            scenario,
            test_host.name,
            f"grep -v ' {name}$' /etc/hosts > /tmp/hosts.new || true;"
            f" echo '{line}' >> /tmp/hosts.new; cat /tmp/hosts.new > /etc/hosts; rm -f /tmp/hosts.new",
            check=False,
        )


def host_network(scenario: Scenario, host: str, *command: str) -> None:
    """Run `command` (e.g. `ip route add blackhole ...`) in the network namespace of a host,
    from this machine: the test hosts themselves may not change their network."""
    pid = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", scenario.container(host)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(["nsenter", "-t", pid, "-n", *command], check=True, capture_output=True)


def state_dir_for(project: str) -> Path:
    """Where a test scenario keeps its state: outside the repo, one directory a project."""
    base = Path(os.environ.get("PKI_CACHE_DIR", Path.home() / ".cache" / "etcd-step-pki"))
    return base / "scenarios" / project
