"""The per-run settings of day-2 deploys (`--data key=value`), each declared once.

None when not given. A host's RunOptions are its validated values of these (the host model
inherits them); checks that need other hosts (is the target a cert-manager?) are the
deploys'.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from etcd_step_pki.deploys.settings.values import (
    CertKind,
    ClusterName,
    DrillFrom,
    FileName,
    IsoTime,
    Line,
    Port,
    StatusFormat,
    StopAfter,
    _between,
    _kinds,
    per_run,
    refuse_control_characters,
    setting,
)


class RunOptions(BaseModel):
    """The per-run settings, strict and frozen as the host's other settings."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def no_control_characters(cls, data: Any) -> Any:
        """No value of any setting, whatever its kind, can end a line where it lands."""
        return refuse_control_characters(data)

    renew_before: IsoTime | None = per_run(
        "renew now the certificates issued before this ISO 8601 time (with a time zone)"
    )
    rotate_before: IsoTime | None = per_run(
        "rotate the intermediate when it was issued before this time (`rotate_intermediate.py`)"
    )
    revoke_before: IsoTime | None = per_run(
        "`revoke.py`: the certificates of `revoke_host` issued before this time are revoked"
    )
    revoke_host: Line | None = per_run(
        "`revoke.py`: the compromised host, whose certificates are revoked and issued again"
    )
    renew_kinds: Annotated[tuple[CertKind, ...], BeforeValidator(_kinds)] | None = per_run(
        "the kinds renewed now: `peer`, `server`, `client` (a list or `peer,server`)",
        shown="all three",
    )
    ca_active: Line | None = setting(
        None,
        "the cert-manager that runs step-ca: a failover names a backup "
        "(`failover.py --data ca_active=<backup>`)",
        shown="the first of `etcd_cert_managers`",
    )
    failover_force: bool | None = per_run("fail over although the primary still answers")
    ca_restore_from: Line | None = per_run("CA restore: `s3` or the cert-manager to restore from")
    ca_restore_key: Line | None = per_run("CA restore: the S3 object key, or `latest`")
    ca_restore_private_key: Line | None = per_run(
        "CA restore: the file on the controller with the GnuPG private key of the backups"
    )
    ca_restore_target: Line | None = per_run(
        "CA restore: the cert-manager restored", shown="the primary"
    )
    ca_restore_any_root: bool | None = per_run(
        "CA restore: accept a backup of another root (a pinned root still applies)"
    )
    ca_restore_allow_older: bool | None = per_run(
        "CA restore or drill: a backup older than the CA's newest signed one (undoes what the "
        "CA recorded since)"
    )
    ca_accept_new_root: bool | None = per_run('record the root found (see "One root, pinned")')
    ca_restore_unsigned: bool | None = per_run(
        "restore an S3 backup without verifying its signature"
    )
    cfssl_migration_stop_after: StopAfter | None = per_run(
        "`migrate_cfssl.py` stops after this step: `bundle`, `certs` or `final`"
    )
    status_format: StatusFormat | None = per_run(
        "`status.py`'s output: `text` or `json`", shown="`text`"
    )
    status_ca_expiry_days: Annotated[int, _between(0, None, "a number of days")] | None = per_run(
        "`status.py`: a root or intermediate expiring within this many days is reported",
        shown="`180`",
    )
    etcd_cluster: ClusterName | None = per_run(
        "with several clusters: the one cluster `remove_node.py`, `etcd_backup.py`, "
        "`etcd_restore.py` and `migrate_cfssl.py` act on (required there); for `cluster.py`, "
        "`etcd_maintenance.py` and `rotate_intermediate.py`, that cluster only instead of each "
        "in turn"
    )
    etcd_remove_node: Line | None = per_run("the member `remove_node.py` removes")
    etcd_snapshot_member: Line | None = per_run("the member `etcd_backup.py` snapshots")
    etcd_snapshot_name: FileName | None = per_run(
        "`etcd_backup.py`: the snapshot's file name",
        shown="`etcd-<cluster>-<YYYYMMDD>.db`",
    )
    etcd_restore_snapshot: Line | None = per_run(
        "the snapshot file on the controller `etcd_restore.py` restores"
    )
    etcd_restore_confirm: Line | None = per_run(
        "`etcd_restore.py`: the snapshot's SHA-256, confirming that every member's data is replaced"
    )
    etcd_restore_private_key: Line | None = per_run(
        "the file on the controller with the private key of encrypted snapshots"
    )
    etcd_snapshot_unencrypted: bool | None = per_run(
        "`etcd_backup.py`: fetch the snapshot unencrypted (not to `ca_backup_recipient_key`)"
    )
    drill_host: Line | None = per_run(
        "DR drill: the cert-manager drilled", shown="the first backup cert-manager"
    )
    drill_from: DrillFrom | None = per_run("DR drill: `replica` or `s3`", shown="`replica`")
    drill_port: Port | None = per_run("DR drill: the drill's step-ca on 127.0.0.1", shown="`9443`")
    drill_before: IsoTime | None = per_run(
        "DR drill: only when the last one here succeeded before this time"
    )
