"""Reading hosts' data: unknown names refused, pyinfra's own data passed, per-run settings
typed, and the whole inventory validated once a run, cheaply."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from pyinfra.api import Config, Inventory, State
from pyinfra.context import ctx_host, ctx_state

from etcd_step_pki.deploys.settings import (
    Settings,
    SettingsError,
    all_settings,
    load_settings,
    time_setting,
    validate_inventory,
)
from tests.unit.test_settings import _inventory
from tests.unit.test_settings_model import settings_of


@contextmanager
def _run(data: dict, name: str = "etcd-k8s-3") -> Iterator[Settings]:
    """A pyinfra run of the test inventory, on host `name`: its settings."""
    inventory = _inventory(data)
    with ctx_state.use(State(inventory, Config())), ctx_host.use(inventory.get_host(name)):
        yield load_settings()


def test_an_unknown_setting_is_refused_with_a_hint() -> None:
    with pytest.raises(
        SettingsError,
        match="invalid setting `renewl_enabled` for host etcd-k8s-1: unknown setting; "
        r"did you mean renewal_enabled\?",
    ):
        validate_inventory(_inventory({"renewl_enabled": False}))


def test_an_unknown_setting_without_a_close_name_says_so() -> None:
    with pytest.raises(SettingsError, match="`zzz` for host etcd-k8s-1: unknown setting, and no"):
        validate_inventory(_inventory({"zzz": 1}))


def test_an_unknown_name_is_reported_before_other_problems() -> None:
    with pytest.raises(SettingsError, match=r"`step_ca_prot`.*did you mean step_ca_port"):
        validate_inventory(_inventory({"step_ca_prot": 1, "renewal_enabled": "yes"}))


@pytest.mark.parametrize(
    "data",
    [
        {"ssh_user": "root", "ssh_port": 2222, "ssh_key": "/root/.ssh/id"},
        {"_sudo": True, "_sudo_user": "etcd", "_env": {"A": "1"}},
        {"docker_identifier": "c1", "chroot_directory": "/srv/c", "winrm_port": 5986},
        {"local_anything": 1, "vagrant_x": 1, "terraform_x": 1, "podman_x": 1, "fake_delay": 1},
    ],
)
def test_pyinfra_own_data_passes(data: dict) -> None:
    assert len(validate_inventory(_inventory(data))) == 4


def test_per_run_settings_are_none_unless_given() -> None:
    assert all(value is None for value in vars(settings_of({}).run).values())


@pytest.mark.parametrize(
    ("data", "setting"),
    [
        ({"failover_force": "x"}, "failover_force"),
        ({"ca_restore_any_root": "yes"}, "ca_restore_any_root"),
        ({"status_format": "xml"}, "status_format"),
        ({"status_ca_expiry_days": -1}, "status_ca_expiry_days"),
        ({"status_ca_expiry_days": "30"}, "status_ca_expiry_days"),
        ({"cfssl_migration_stop_after": "all"}, "cfssl_migration_stop_after"),
        ({"renew_kinds": "peer,serverr"}, "renew_kinds"),
        ({"renew_kinds": 3}, "renew_kinds"),
        ({"renew_before": "yesterday"}, "renew_before"),
        ({"rotate_before": "2026-11-28T06:00:00"}, "rotate_before"),
        ({"etcd_snapshot_name": "../x.db"}, "etcd_snapshot_name"),
        ({"etcd_remove_node": 4}, "etcd_remove_node"),
    ],
)
def test_per_run_settings_are_typed(data: dict, setting: str) -> None:
    with pytest.raises(SettingsError, match=rf"`{setting}` for host etcd-k8s-1: "):
        validate_inventory(_inventory(data))


def test_per_run_settings_as_given_on_the_command_line() -> None:
    data = {
        "renew_kinds": "peer, server",
        "failover_force": True,
        "status_format": "json",
        "status_ca_expiry_days": 30,
        "ca_restore_from": "s3",
        "cfssl_migration_stop_after": "certs",
    }
    run = settings_of(data).run
    assert run.renew_kinds == ("peer", "server")
    assert (run.failover_force, run.status_format, run.status_ca_expiry_days) == (True, "json", 30)
    assert (run.ca_restore_from, run.cfssl_migration_stop_after) == ("s3", "certs")
    assert settings_of({"renew_kinds": ["client"]}, "client-1").run.renew_kinds == ("client",)


def test_time_settings_are_read_from_the_validated_run() -> None:
    with _run({"rotate_before": "2026-11-28T06:00:00Z"}):
        assert time_setting("rotate_before") == 1795845600.0
        with pytest.raises(SettingsError, match="`renew_before` for host etcd-k8s-3: not set"):
            time_setting("renew_before")


def test_a_run_validates_every_host_once_and_the_next_run_again() -> None:
    with _run({}) as settings:
        assert settings.node_name == "etcd-k8s-3" and not settings.is_cert_manager
        assert [s.host for s in all_settings()] == ["etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3",
                                                      "client-1"]  # fmt: skip
        assert load_settings() is settings
    with (
        pytest.raises(SettingsError, match="`renewl_enabled` for host etcd-k8s-1"),
        _run({"renewl_enabled": True}),
    ):
        pass


def test_forty_hosts_validate_quickly() -> None:
    names = [f"etcd-k8s-{i}" for i in range(1, 6)] + [f"client-{i}" for i in range(35)]
    hosts = [
        (n, {"ssh_hostname": f"10.0.1.{i + 1}", "ssh_user": "root"}) for i, n in enumerate(names)
    ]
    inventory = Inventory(
        (hosts, {"renewal_expires_in": "80%", "cert_extra_sans": ["etcd.example"]}),
        etcd=(names[:5], {}),
        etcd_cert_managers=(names[:2], {}),
        etcd_clients=(names[5:], {}),
    )
    validate_inventory(inventory)  # connectors' data names are looked up once a process
    started = time.perf_counter()
    assert len(validate_inventory(inventory)) == 40
    assert time.perf_counter() - started < 0.1
