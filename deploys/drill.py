"""A disaster-recovery drill that touches nothing live.

    pyinfra inventories/<environment>.py deploys/drill.py
    pyinfra inventories/<environment>.py deploys/drill.py --data drill_from=s3
        --data ca_restore_private_key=backup-private.asc
    pyinfra inventories/<environment>.py deploys/drill.py
        --data drill_before=2026-09-01T00:00:00Z        # only if no drill succeeded since

On the drill host (`drill_host`, default the first backup cert-manager) the CA is restored
from that host's replica (default) or from an S3 backup (`drill_from=s3`: the latest, or
`ca_restore_key`; its checksum and signature checked, decrypted on the host) into a
throwaway directory on tmpfs, served by a step-ca of its own on 127.0.0.1:`drill_port`
(9443), and proven: a new certificate issued, verified against the live root and renewed,
and a copy of one of the host's live certificates renewed over mTLS through it. The time
from the start of the restore to a working CA is printed and recorded on the host
(/var/lib/etcd-step-pki/last-drill.json). Everything the drill made is removed, however it
ends; the live CA state, step-ca, node certificates and etcd are only read.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components import drill as drill_component
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("drill.py", data_defaults=DEFAULTS)
def drill() -> None:
    """A disaster-recovery drill that touches nothing live."""
    drill_component.drill()


run_when_executed(globals(), drill)
