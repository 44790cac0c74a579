"""Settings that are valid alone and not together: each check names the setting to change,
before any host is touched. Run by the model (model.py) after every field is valid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etcd_step_pki.deploys.settings.values import Invalid
from etcd_step_pki.operations.ca_probe import PROBE_TIMEOUT
from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.etcd.releases import settings_problem
from etcd_step_pki.operations.etcd.tls import suites_with_version_problem

if TYPE_CHECKING:
    from etcd_step_pki.deploys.settings.model import HostSettings


def check(settings: HostSettings) -> None:
    """Every check below, in turn; the first that fails raises Invalid."""
    for each in (
        default_duration_within_bounds,
        etcd_would_start,
        kms_key_named,
        artifact_source_complete,
        root_key_offline_encrypted,
        ca_probe_outlasts_a_probe,
    ):
        each(settings)


def default_duration_within_bounds(s: HostSettings) -> None:
    default, low, high = (
        s.step_cert_default_duration,
        s.step_cert_min_duration,
        s.step_cert_max_duration,
    )
    if not parse_duration(low) <= parse_duration(default) <= parse_duration(high):
        raise Invalid(
            "step_cert_default_duration",
            f"{default} must lie between step_cert_min_duration ({low}) and "
            f"step_cert_max_duration ({high})",
        )


def etcd_would_start(s: HostSettings) -> None:
    """Combinations etcd refuses at start: found here, not by a member that fails."""
    problem = suites_with_version_problem(s.etcd_cipher_suites, s.etcd_tls_min_version)
    if problem:
        raise Invalid("etcd_cipher_suites", problem)
    if s.etcd_install_from == "archive":
        release = settings_problem(s.etcd_version, s.etcd_feature_gates)
        if release:
            raise Invalid(*release)
    if s.etcd_client_port == s.etcd_peer_port:
        raise Invalid("etcd_peer_port", f"{s.etcd_peer_port} is etcd_client_port as well")
    if s.etcd_metrics_port in (s.etcd_client_port, s.etcd_peer_port):
        raise Invalid("etcd_metrics_port", f"{s.etcd_metrics_port} is one of etcd's ports")
    if s.step_ca_user in ("root", s.etcd_user):
        raise Invalid("step_ca_user", "step-ca needs an account of its own, not root's or etcd's")
    if s.step_ca_port in (s.etcd_client_port, s.etcd_peer_port):
        raise Invalid("step_ca_port", f"{s.step_ca_port} is one of etcd's ports")


def kms_key_named(s: HostSettings) -> None:
    if s.ca_backup_encryption == "kms" and not s.ca_backup_kms_key_id:
        raise Invalid("ca_backup_kms_key_id", "a KMS key is needed with ca_backup_encryption=kms")


def artifact_source_complete(s: HostSettings) -> None:
    if s.artifact_source == "mirror" and s.artifact_mirror_url is None:
        raise Invalid("artifact_mirror_url", "an http(s) URL is needed with mirror")
    if s.artifact_source == "local" and s.artifact_dir is None:
        raise Invalid("artifact_dir", "a directory on the controller is needed")


def root_key_offline_encrypted(s: HostSettings) -> None:
    if s.ca_root_key_offline and (s.ca_backup_encryption != "gpg" or not s.ca_backup_recipient_key):
        raise Invalid(
            "ca_root_key_offline",
            "the root key leaves the cert-managers encrypted to ca_backup_recipient_key "
            "(ca_backup_encryption=gpg): set it",
        )


def ca_probe_outlasts_a_probe(s: HostSettings) -> None:
    """A CA probe waits up to PROBE_TIMEOUT seconds: the next must not start before."""
    if parse_duration(s.ca_probe_interval) <= PROBE_TIMEOUT:
        raise Invalid(
            "ca_probe_interval",
            f"{s.ca_probe_interval} is not longer than a probe may wait ({PROBE_TIMEOUT}s)",
        )
