"""Backups of the CA state to S3, and restores from S3 or from another cert-manager."""

from __future__ import annotations

from pathlib import Path

from pyinfra import host

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.ca import install_step_ca, keep_step_ca_stopped, run_step_ca
from etcd_step_pki.deploys.settings import Settings, SettingsError, load_settings
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.operations import ca
from etcd_step_pki.operations.backup_store import Kms, Store
from etcd_step_pki.operations.ca_backup import backed_up, backup_signing_key
from etcd_step_pki.operations.ca_restore import RESTORE_MARKER, recorded, restored_from_s3
from etcd_step_pki.operations.replication import replicated


def store_of(settings: Settings) -> Store:
    backup = settings.backup
    if not backup.bucket:
        raise SettingsError(f"invalid setting `ca_backup_bucket` for host {host.name}: not set")
    return Store(
        bucket=backup.bucket,
        prefix=backup.prefix,
        endpoint_url=backup.endpoint_url,
        region=backup.region,
    )


def kms_of(settings: Settings) -> Kms | None:
    """The KMS key of envelope encryption (`ca_backup_encryption=kms`), else None."""
    backup = settings.backup
    if backup.encryption != "kms" or not backup.kms_key_id:
        return None
    return Kms(backup.kms_key_id, backup.kms_endpoint_url, backup.region)


@component("Back up the CA")
def backup_ca() -> None:
    """On the primary: an encrypted archive of the whole CA state, uploaded to S3."""
    settings = load_settings()
    store = store_of(settings)
    kms = kms_of(settings)
    recipient = (
        None
        if kms
        else arguments.key_file("ca_backup_recipient_key", settings.backup.recipient_key, "public")
    )
    if not settings.is_primary:
        return
    backup_signing_key(
        name="The CA's backup signing key", path=settings.ca_path, cluster=settings.ca_cluster
    )
    backed_up(
        name="Encrypted CA backup in S3",
        path=settings.ca_path,
        store=store,
        recipient_key=recipient,
        retention_days=settings.backup.retention_days,
        signer_record=settings.backup.signer_record,
        kms=kms,
    )


def signer_key_of(settings: Settings) -> str | None:
    """The public key backups must be signed with, as the first backup recorded it; None
    when the operator restores without verifying (`ca_restore_unsigned=true`)."""
    record = Path(settings.backup.signer_record)
    if settings.run.ca_restore_unsigned:
        return None
    if not record.is_file():
        raise SettingsError(
            f"no recorded backup signer key at {record} (the first backup writes it beside "
            "the root's record): put it back, or restore without verifying the signature with "
            "--data ca_restore_unsigned=true"
        )
    return record.read_text()


def _restore_target(settings: Settings) -> str:
    target = settings.run.ca_restore_target or settings.primary
    if target not in (settings.primary, *settings.backups):
        raise SettingsError(f"ca_restore_target: {target!r} is no cert-manager")
    return str(target)


@component("Restore the CA")
def restore_ca() -> None:
    """Restore the CA state onto a cert-manager (`ca_restore_target`, default the primary)
    from S3 (`ca_restore_from=s3`, `ca_restore_key` = an object key or `latest`) or from
    another cert-manager (`ca_restore_from=<host>`)."""
    settings = load_settings()
    source = settings.run.ca_restore_from
    target = _restore_target(settings)
    managers = (settings.primary, *settings.backups)
    signer, kms = None, kms_of(settings)
    private_key: str | None = None
    if source == "s3":
        store = store_of(settings)
        if kms is None:
            private_key = arguments.key_file(
                "ca_restore_private_key", settings.run.ca_restore_private_key, "private"
            )
        signer = signer_key_of(settings)
    elif source in managers and source != target:
        store = None
    else:
        raise SettingsError(
            "ca_restore_from: `s3`, or the cert-manager to copy the CA state from "
            f"(one of {', '.join(m for m in managers if m != target)})"
        )
    if host.name != target:
        return
    binary = install_step_ca(settings)
    if store is not None:
        restored = restored_from_s3(
            name="CA state from S3",
            path=settings.ca_path,
            store=store,
            key=settings.run.ca_restore_key or "latest",
            private_key=private_key,
            any_root=bool(settings.run.ca_restore_any_root),
            pin=arguments.pinned_root(settings),
            signer_key=signer,
            kms=kms,
            allow_older=bool(settings.run.ca_restore_allow_older),
        )
    elif host.get_fact(FileText, path=RESTORE_MARKER) == f"host:{source}":
        host.noop(f"the CA state of {source} was restored here already")
        restored = None
    else:
        restored = replicated(
            name=f"CA state from {source}",
            primary=str(source),
            path=settings.ca_path,
            pin=arguments.pinned_root(settings),
        )
        recorded(name="Record the restore", source=f"host:{source}")
    ca.file_modes(name="CA file modes", path=settings.ca_path, ca_user=settings.ca_user)
    if target == settings.primary:
        run_step_ca(settings, [m for m in (restored, binary) if m is not None])
    else:
        keep_step_ca_stopped(settings)
