"""The compose file of a scenario: container options for cgroup v1 and v2 hosts."""

import json
from pathlib import Path

import pytest

from tests.harness import hosts as harness


def _scenario(tmp_path: Path) -> harness.Scenario:
    subnet = "10.99.0.0/24"
    return harness.Scenario(
        "pki-unit", subnet, harness.default_hosts(subnet), tmp_path, image="img:1"
    )


def _service(tmp_path: Path, name: str) -> dict:
    compose = json.loads((tmp_path / "docker-compose.yml").read_text())
    return compose["services"][name]


@pytest.mark.parametrize("version", [1, 2])
def test_systemd_options_follow_the_cgroup_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    monkeypatch.setattr(harness, "cgroup_version", lambda: version)
    harness.write_scenario(_scenario(tmp_path))
    service = _service(tmp_path, "etcd-k8s-1")
    assert service["cap_add"] == ["SYS_ADMIN"]
    assert service["security_opt"] == ["seccomp=unconfined"]
    assert service["tmpfs"] == ["/run", "/run/lock"]
    assert "privileged" not in service
    if version == 1:
        assert "/sys/fs/cgroup:/sys/fs/cgroup:ro" in service["volumes"]
        assert "cgroup" not in service
    else:
        assert "/sys/fs/cgroup:/sys/fs/cgroup:rw" in service["volumes"]
        assert service["cgroup"] == "private"


def test_default_layout_and_inventory_state(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path)
    harness.write_scenario(scenario)
    state = json.loads((tmp_path / "hosts.json").read_text())
    groups = {h["name"]: h["groups"] for h in state["hosts"]}
    assert groups == {
        "etcd-k8s-1": ["etcd", "etcd_cert_managers"],
        "etcd-k8s-2": ["etcd", "etcd_cert_managers"],
        "etcd-k8s-3": ["etcd"],
        "client-1": ["etcd_clients"],
    }
    service = _service(tmp_path, "etcd-k8s-2")
    assert service["networks"]["pki"]["ipv4_address"] == "10.99.0.12"
    assert service["networks"]["pki"]["aliases"] == ["etcd-k8s-2.sandbox.test"]
    assert (tmp_path / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "authorized_keys").read_text().startswith("ssh-ed25519 ")
