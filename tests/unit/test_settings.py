"""Settings are validated before any host is touched, with the setting and host named."""

from __future__ import annotations

import pytest
from pyinfra.api import Inventory

from etcd_step_pki.deploys.settings import (
    SettingsError,
    settings_for,
    validate_inventory,
)
from etcd_step_pki.operations.durations import parse_duration

SUM = "a" * 64


def _inventory(data: dict | None = None, managers=("etcd-k8s-1", "etcd-k8s-2")) -> Inventory:
    hosts = ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3", "client-1"]
    groups = {
        "etcd": (hosts[:3], {}),
        "etcd_clients": (["client-1"], {}),
    }
    if managers:
        groups["etcd_cert_managers"] = (list(managers), {})
    host_data = [(name, {"ssh_hostname": f"10.0.0.{i + 1}"}) for i, name in enumerate(hosts)]
    return Inventory((host_data, data or {}), **groups)


def test_defaults_are_the_reference_values() -> None:
    inventory = _inventory()
    settings = settings_for(inventory.get_host("etcd-k8s-1"), inventory)
    assert settings.durations.default == "17520h"
    assert settings.durations.max == "26280h"
    assert settings.durations.min == "1h"
    assert settings.ca_port == 9000
    assert settings.ca_url == "https://etcd-k8s-1:9000"
    assert settings.ca_path == "/etc/step-ca"
    assert settings.bin_dir == "/opt/bin"
    assert settings.ca_db_type == "bbolt"
    assert settings.primary == "etcd-k8s-1"
    assert settings.backups == ("etcd-k8s-2",)
    assert settings.is_primary and settings.is_cert_manager
    assert settings.addresses == ("10.0.0.1",)
    assert set(settings.step_ca.checksums) == {"amd64", "arm64"}
    assert settings.step_ca.url("arm64") == (
        "https://github.com/smallstep/certificates/releases/download/v0.30.2/"
        "step-ca_linux_0.30.2_arm64.tar.gz"
    )


def test_every_host_of_the_inventory_is_validated() -> None:
    assert set(validate_inventory(_inventory())) == {
        "etcd-k8s-1",
        "etcd-k8s-2",
        "etcd-k8s-3",
        "client-1",
    }


@pytest.mark.parametrize(
    ("data", "setting"),
    [
        ({"step_cert_default_duration": "two years"}, "step_cert_default_duration"),
        ({"step_cert_max_duration": "1h", "step_cert_min_duration": "1h"},
         "step_cert_default_duration"),
        ({"step_cert_min_duration": "5"}, "step_cert_min_duration"),
        ({"step_ca_port": 70000}, "step_ca_port"),
        ({"step_ca_url": "http://ca:9000"}, "step_ca_url"),
        ({"step_ca_dns_names": ["bad name"]}, "step_ca_dns_names"),
        ({"step_ca_db_type": "sqlite"}, "step_ca_db_type"),
        ({"artifact_source": "ftp"}, "artifact_source"),
        ({"artifact_source": "mirror"}, "artifact_mirror_url"),
        ({"artifact_source": "local"}, "artifact_dir"),
        ({"step_version": "latest"}, "step_version"),
        ({"step_checksums": {"amd64": "123"}}, "step_checksums"),
        ({"step_ca_checksums": {"riscv64": SUM}}, "step_ca_checksums"),
        ({"node_addresses": ["not-an-ip"]}, "node_addresses"),
        ({"etcd_cluster_name": "K8S"}, "etcd_cluster_name"),
        ({"step_ca_intermediate_duration": "ten years"}, "step_ca_intermediate_duration"),
        # The name the CA adds to open a cluster's client port: no host may name it.
        ({"cert_extra_sans": ["k8s.etcd-clients.invalid"]}, "cert_extra_sans"),
    ],
)  # fmt: skip
def test_bad_input_names_the_setting_and_host(data: dict, setting: str) -> None:
    with pytest.raises(SettingsError, match=rf"`{setting}` for host etcd-k8s-1"):
        validate_inventory(_inventory(data))


def test_no_cert_manager_group_is_refused() -> None:
    with pytest.raises(SettingsError, match="no primary cert-manager"):
        validate_inventory(_inventory(managers=()))


def test_a_host_named_like_a_clusters_client_port_is_refused() -> None:
    inventory = Inventory(
        ([("ca-1", {}), ("K8S.etcd-clients.invalid", {"ssh_hostname": "10.0.0.9"})], {}),
        etcd_cert_managers=(["ca-1"], {}),
        etcd_clients=(["K8S.etcd-clients.invalid"], {}),
    )
    with pytest.raises(
        SettingsError, match=r"`inventory name` for host K8S\.etcd-clients\.invalid"
    ):
        validate_inventory(inventory)


def test_a_host_in_no_known_group_is_refused() -> None:
    inventory = Inventory(
        ([("stray", {}), ("ca-1", {})], {}),
        etcd_cert_managers=(["ca-1"], {}),
        other=(["stray"], {}),
    )
    with pytest.raises(SettingsError, match="host stray"):
        settings_for(inventory.get_host("stray"), inventory)


def test_mirror_and_local_sources() -> None:
    inventory = _inventory(
        {"artifact_source": "mirror", "artifact_mirror_url": "http://mirror.example/pki/"}
    )
    step = settings_for(inventory.get_host("etcd-k8s-3"), inventory).step
    assert step.url("amd64") == "http://mirror.example/pki/step_linux_0.30.6_amd64.tar.gz"
    inventory = _inventory({"artifact_source": "local", "artifact_dir": "/srv/artifacts"})
    step = settings_for(inventory.get_host("etcd-k8s-3"), inventory).step
    assert step.local_path("arm64") == "/srv/artifacts/step_linux_0.30.6_arm64.tar.gz"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("17520h", 17520 * 3600), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("500ms", 0.5)],
)
def test_durations_parse_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
