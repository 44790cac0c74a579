"""Renew certificates now (day-2), through their renewal units.

    pyinfra inventories/<environment>.py deploys/renew.py --data renew_before=2026-11-28T06:00:00Z
    pyinfra inventories/<environment>.py deploys/renew.py --limit etcd-k8s-1
        --data renew_before=2026-11-28T06:00:00Z --data renew_kinds=peer,server

Every selected certificate issued before `renew_before` is renewed over mTLS (same key); a
second run with the same time changes nothing. etcd picks the new certificates up on its next
TLS connections, without a restart.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.certificates import renew_now
from etcd_step_pki.deploys.settings import DEFAULTS


@deploy("renew.py", data_defaults=DEFAULTS)
def renew() -> None:
    """Renew certificates now (day-2), through their renewal units."""
    renew_now()


run_when_executed(globals(), renew)
