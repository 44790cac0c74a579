"""Restore the CA state onto a cert-manager, from S3 or from another cert-manager.

    pyinfra inventories/<environment>.py deploys/restore_ca.py --data ca_restore_from=s3
        --data ca_restore_private_key=/secure/ca-backup.key.asc [--data ca_restore_key=<key>]
    pyinfra inventories/<environment>.py deploys/restore_ca.py --data ca_restore_from=etcd-k8s-2

The backup's checksum is verified before anything is touched; a damaged backup, a wrong key
or a backup of another CA changes nothing. The previous state is kept beside the new one.
"""

from deploys.components.ca_backup import restore_ca

restore_ca()
