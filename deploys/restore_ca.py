"""Restore the CA state onto a cert-manager, from S3 or from another cert-manager.

    pyinfra inventories/<environment>.py deploys/restore_ca.py --data ca_restore_from=s3
        --data ca_restore_private_key=/secure/ca-backup.key.asc [--data ca_restore_key=<key>]
    pyinfra inventories/<environment>.py deploys/restore_ca.py --data ca_restore_from=s3
        --data ca_backup_encryption=kms --data ca_backup_kms_key_id=alias/etcd-ca-backup
    pyinfra inventories/<environment>.py deploys/restore_ca.py --data ca_restore_from=etcd-k8s-2

A KMS backup's data key is unwrapped by KMS Decrypt (under the configured key and the backup's
own encryption context) when the run executes; no private key is needed.

The backup's checksum is verified before anything is touched; a damaged backup, a wrong key
or a backup of another CA changes nothing. The previous state is kept beside the new one.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import ca_backup
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("restore_ca.py", data_defaults=DEFAULTS)
def restore_ca() -> None:
    """Restore the CA state onto a cert-manager, from S3 or from another cert-manager."""
    ca_backup.restore_ca()


run_when_executed(globals(), restore_ca)
