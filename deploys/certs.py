"""Trust, certificates and renewal timers on every etcd member and client (needs the CA).

pyinfra inventories/<environment>.py deploys/certs.py
"""

from deploys.components.certificates import certificates

certificates()
