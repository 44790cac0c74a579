"""The scripts of backups, restores, drills and replication, rendered as their operations
render them."""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api import StringCommand

from etcd_step_pki.operations import ca_backup, ca_restore, drill, replication
from etcd_step_pki.templates import render

_ETCDCTL = [
    "/usr/local/bin/etcdctl",
    "--cacert=/etc/etcd/pki/ca.crt",
    "--cert=/etc/etcd/pki/etcd-k8s-1.crt",
    "--key=/etc/etcd/pki/etcd-k8s-1.key",
    "--endpoints=https://10.0.0.1:2379",
]


def snapshot_save() -> str:
    return render(
        "etcd-snapshot-save.sh.j2",
        directory="/var/lib/etcd-snapshots",
        name="k8s 2026.db",
        etcdctl=_ETCDCTL,
    )


def snapshot_encrypt() -> str:
    return render("etcd-snapshot-encrypt.sh.j2", directory="/var/lib/etcd-snapshots", name="a.db")


def snapshot_restore(encrypted: bool) -> Callable[[], str]:
    def rendered() -> str:
        return render(
            "etcd-snapshot-restore.sh.j2",
            encrypted=encrypted,
            staged="/var/lib/etcd-step-pki/staging/etcd-restore-0123456789abcdef.db",
            sha256="0" * 64,
            unit="etcd-k8s.service",
            data="/var/lib/etcd/k8s",
            aside="/var/lib/etcd/k8s.before-restore-0123456789abcdef",
            etcdutl="/usr/local/bin/etcdutl",
            name="etcd-k8s-1",
            cluster="etcd-k8s-1=https://10.0.0.1:2380,etcd-k8s-2=https://10.0.0.2:2380",
            token="k8s-restored",
            peer_url="https://10.0.0.1:2380",
            user="etcd",
            marker="/var/lib/etcd/k8s.restored-0123456789abcdef",
        )

    return rendered


def _script(command: StringCommand) -> str:
    """The script a command built by `templates.scripts.script` runs."""
    return str(command.bits[2].obj)


def transfer_keypair() -> str:
    return _script(replication.keypair(replication.TRANSFER))


def transfer_pack() -> str:
    return _script(replication.pack(f"{replication.TRANSFER}-etcd-k8s-2", "/etc/step-ca"))


def transfer_unpack() -> str:
    return _script(replication.unpack(replication.TRANSFER, "0" * 64, "/etc/step-ca", "a" * 64))


def backup_signing_key() -> str:
    return render(
        "ca-backup-signing-key.sh.j2",
        key="/etc/step-ca/secrets/backup_signing_key",
        uid="etcd-step-pki CA backups (etcd-k8s)",
    )


def backup_pack(encryption: str = "gpg") -> str:
    key = "step-ca/2026/12/ca-backup-20261207T120000Z.tar.gz.gpg"
    return _script(
        ca_backup._pack(encryption, "/etc/step-ca", key, "2026-12-07T12:00:00Z", "0" * 64)
    )


def restore(encryption: str = "gpg", expect_root: str = "ab" * 32) -> str:
    return _script(ca_restore.restore_script("/etc/step-ca", encryption, expect_root))


PLAN = drill.DrillPlan(
    ca_path="/etc/step-ca",
    port=9443,
    bin_dir="/opt/bin",
    provisioner="etcd-pki",
    live_root="/etc/etcd/ssl/root_ca.crt",
    expect_root="ab" * 32,
    live_certificate=("/etc/etcd/ssl/etcd-k8s-2-peer.crt", "/etc/etcd/ssl/etcd-k8s-2-peer.key"),
)


def drill_from(encryption: str | None = "gpg") -> str:
    return _script(drill.drill_script(PLAN, encryption))


SAMPLES: dict[str, Callable[[], str]] = {
    "etcd-snapshot-save.sh.j2": snapshot_save,
    "etcd-snapshot-encrypt.sh.j2": snapshot_encrypt,
    "etcd-snapshot-restore.sh.j2": snapshot_restore(True),
    "ca-transfer-keypair.sh.j2": transfer_keypair,
    "ca-transfer-pack.sh.j2": transfer_pack,
    "ca-transfer-unpack.sh.j2": transfer_unpack,
    "ca-backup-signing-key.sh.j2": backup_signing_key,
    "ca-backup-pack.sh.j2": backup_pack,
    "ca-restore.sh.j2": restore,
    "ca-drill.sh.j2": drill_from,
}
