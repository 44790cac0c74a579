"""Encrypted backup of the whole CA state to S3 (or any S3-compatible endpoint).

    pyinfra inventories/<environment>.py deploys/backup_ca.py

Needs ca_backup_bucket and ca_backup_recipient_key (an armored GnuPG public key on the
controller), or, with ca_backup_encryption=kms, ca_backup_kms_key_id: each backup is then
encrypted with a new data key from KMS GenerateDataKey, stored wrapped beside it
(`<key>.datakey`), the plaintext key only in memory and on the primary's stdin. AWS credentials come from boto3's usual sources (environment, profile, role).
A run changes nothing when the latest backup already holds the CA's current state.
Daily at 02:00 from the controller, e.g. in root's crontab:

    0 2 * * * cd /srv/etcd-step-pki && .venv/bin/pyinfra -y inventories/production.py deploys/backup_ca.py
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import ca_backup
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("backup_ca.py", data_defaults=DEFAULTS)
def backup_ca() -> None:
    """Encrypted backup of the whole CA state to S3 (or any S3-compatible endpoint)."""
    ca_backup.backup_ca()


run_when_executed(globals(), backup_ca)
