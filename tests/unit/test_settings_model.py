"""Each setting's type and range: strict values, one message form naming setting and host."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from etcd_step_pki.deploys.settings import (
    DEFAULTS,
    RunOptions,
    Settings,
    SettingsError,
    settings_for,
    validate_inventory,
)
from etcd_step_pki.deploys.settings.model import HostSettings, KeyType
from etcd_step_pki.operations.certificates import KEY_TYPES
from tests.unit.test_settings import SUM, _inventory


def settings_of(data: dict, name: str = "etcd-k8s-1") -> Settings:
    """One host's settings in the test inventory with `data` as global data."""
    inventory = _inventory(data)
    return settings_for(inventory.get_host(name), inventory)


def _refused(data: dict, setting: str) -> str:
    """The message of the SettingsError (never pydantic's own error) for `data`."""
    expected = rf"^invalid setting `{setting}` for host etcd-k8s-1: "
    with pytest.raises(SettingsError, match=expected) as caught:
        validate_inventory(_inventory(data))
    assert not isinstance(caught.value, ValidationError)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return str(caught.value)


def test_the_model_has_a_field_per_setting_and_per_run_setting() -> None:
    run = set(RunOptions.model_fields)
    assert set(HostSettings.model_fields) == set(DEFAULTS) | run
    assert set(get_args(KeyType)) == set(KEY_TYPES)


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_booleans_are_strict(value: object) -> None:
    assert "true or false" in _refused({"renewal_enabled": value}, "renewal_enabled")


@pytest.mark.parametrize("setting", ["step_ca_port", "etcd_client_port", "etcd_peer_port"])
@pytest.mark.parametrize("value", [0, 65536, "2379", True])
def test_a_bad_port_names_the_setting(setting: str, value: object) -> None:
    _refused({setting: value}, setting)


def test_paths_lose_trailing_slashes() -> None:
    settings = settings_of({"ssl_dir": "/etc/etcd/ssl/", "bin_dir": "/usr/local/bin//"})
    assert settings.ssl_dir == "/etc/etcd/ssl"
    assert settings.bin_dir == settings.etcd.bin_dir == "/usr/local/bin"
    assert settings.certificates[0].crt == "/etc/etcd/ssl/etcd-k8s-1-peer.crt"


@pytest.mark.parametrize("value", ["", "etc/etcd", "/etc/\netcd", 5])
def test_paths_are_absolute_one_line_strings(value: object) -> None:
    _refused({"etcd_data_root": value}, "etcd_data_root")


@pytest.mark.parametrize(
    ("data", "setting"),
    [
        ({"renewal_expires_in": "101%"}, "renewal_expires_in"),
        ({"renewal_expires_in": "0s"}, "renewal_expires_in"),
        ({"renewal_expires_in": 80}, "renewal_expires_in"),
        ({"cfssl_cert_name": "{host}-{kind}.pem"}, "cfssl_cert_name"),
        ({"cfssl_key_name": "keys/{name}.pem"}, "cfssl_key_name"),
        ({"etcd_user": "Etcd"}, "etcd_user"),
        ({"etcd_cluster_name": "-k8s"}, "etcd_cluster_name"),
        ({"node_addresses": "10.0.0.300"}, "node_addresses"),
        ({"cert_extra_sans": "etcd.example"}, "cert_extra_sans"),
        ({"cert_extra_sans": ["etcd..example"]}, "cert_extra_sans"),
        ({"etcd_checksums": {"3.5.21": {"amd64": "123"}}}, "etcd_checksums"),
        ({"etcd_checksums": {"3.5.21": {"amd64": SUM}, "latest": {}}}, "etcd_checksums"),
        ({"etcd_tls_min_version": "TLS1.1"}, "etcd_tls_min_version"),
        ({"cert_key_type": "DSA"}, "cert_key_type"),
        ({"etcd_install_from": "rpm"}, "etcd_install_from"),
        # Revocation reads the CA's records from bbolt only.
        ({"step_ca_db_type": "badgerv2"}, "step_ca_db_type"),
        ({"etcd_http_gateway": "sometimes"}, "etcd_http_gateway"),
        ({"etcd_cipher_suites": ["rc4"]}, "etcd_cipher_suites"),
        ({"etcd_member_index": 0}, "etcd_member_index"),
        ({"etcd_defrag_min_free_bytes": -1}, "etcd_defrag_min_free_bytes"),
        ({"artifact_mirror_url": "mirror.example"}, "artifact_mirror_url"),
        ({"ca_backup_retention_days": 0}, "ca_backup_retention_days"),
        ({"ca_active": "client-1"}, "ca_active"),
        ({"step_ca_name": ["not", "a", "name"]}, "step_ca_name"),
        ({"step_ca_root_fingerprint": "abc"}, "step_ca_root_fingerprint"),
        ({"ca_accept_new_root": "yes"}, "ca_accept_new_root"),
    ],
)
def test_every_check_is_a_settings_error(data: dict, setting: str) -> None:
    _refused(data, setting)


def test_messages_say_what_is_wrong() -> None:
    assert _refused({"step_ca_port": 70000}, "step_ca_port").endswith("70000 is not a TCP port")
    assert _refused({"cert_key_type": "DSA"}, "cert_key_type").endswith(
        "'DSA' is not 'EC', 'OKP' or 'RSA'"
    )
    assert _refused({"step_checksums": {"amd64": "123"}}, "step_checksums").endswith(
        "amd64: '123' is not a SHA-256"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"renewal_expires_in": "80%"}, "80%"),
        ({"renewal_expires_in": "720h"}, "720h"),
        ({}, None),
    ],
)
def test_renewal_point_is_a_percentage_or_duration(data: dict, expected: str | None) -> None:
    assert settings_of(data).renewal.expires_in == expected


def test_lists_may_be_tuples_and_addresses_a_single_string() -> None:
    settings = settings_of(
        {
            "node_addresses": "10.1.0.1",
            "cert_extra_sans": ("etcd.example", "10.1.0.9"),
            "step_ca_dns_names": None,
        }
    )
    assert settings.addresses == ("10.1.0.1",)
    assert settings.extra_sans == ("etcd.example", "10.1.0.9")
    assert settings.ca_dns_names == ()


def test_checksums_by_version_pick_the_version_in_use() -> None:
    other = "b" * 64
    table = {"3.6.14": {"amd64": SUM}, "3.5.30": {"amd64": other, "arm64": other}}
    settings = settings_of({"etcd_checksums": table})
    assert settings.etcd.artifact.checksums == {"amd64": SUM}
    assert settings_of({"etcd_checksums": {}}).etcd.artifact.checksums == {}
    assert settings_of({"etcd_version": "3.7.4"}).etcd.artifact.checksums == {}


def test_backup_settings_are_grouped() -> None:
    backup = settings_of({"ca_backup_bucket": "pki", "ca_backup_prefix": "/ca/backups/"}).backup
    assert (backup.bucket, backup.prefix, backup.region) == ("pki", "ca/backups", "us-east-1")
    assert (backup.endpoint_url, backup.recipient_key, backup.retention_days) == (None, None, 30)


@pytest.mark.parametrize(
    ("data", "setting", "words"),
    [
        ({"etcd_cipher_suites": ["TLS_NOT_A_SUITE"]}, "etcd_cipher_suites", "no cipher suite"),
        ({"etcd_cipher_suites": ["TLS_RSA_WITH_RC4_128_SHA"]}, "etcd_cipher_suites", "insecure"),
        ({"etcd_cipher_suites": ["TLS_AES_128_GCM_SHA256"]}, "etcd_cipher_suites", "TLS 1.3"),
        (
            {
                "etcd_cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
                "etcd_tls_min_version": "TLS1.3",
            },
            "etcd_cipher_suites",
            "etcd refuses it",
        ),
        ({"etcd_tls_min_version": "TLS1.1"}, "etcd_tls_min_version", "TLS1.1"),
        ({"etcd_peer_port": 2379}, "etcd_peer_port", "etcd_client_port as well"),
        ({"step_ca_port": 2380}, "step_ca_port", "one of etcd's ports"),
        ({"etcd_compaction_retention": "1 hour"}, "etcd_compaction_retention", "duration"),
    ],
)
def test_values_etcd_would_refuse_are_refused_before_any_host_changes(
    data: dict, setting: str, words: str
) -> None:
    """A value no member could start with would restart every member into failure."""
    assert words in _refused(data, setting)


def test_a_cipher_suite_etcd_accepts_is_kept() -> None:
    suites = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"]
    assert settings_of({"etcd_cipher_suites": suites}).etcd.cipher_suites == tuple(suites)
