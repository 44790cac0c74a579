"""Install, initialise and run step-ca on the cert-managers.

pyinfra inventories/<environment>.py deploys/ca.py
"""

from deploys.components.ca import certificate_authority

certificate_authority()
