"""Certificate, CA and etcd health report; changes nothing. Exits non-zero when anything
needs attention (a certificate missing or past its renewal point, a failed renewal, a
stopped renewal timer, step-ca unhealthy, a CA certificate expiring within
status_ca_expiry_days, etcd unhealthy).

    pyinfra inventories/<environment>.py deploys/status.py
    pyinfra inventories/<environment>.py deploys/status.py --data status_format=json
"""

from deploys.components.status import status

status()
