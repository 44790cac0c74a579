"""Copy the primary's complete CA state to every backup cert-manager, encrypted in transit.

pyinfra inventories/<environment>.py deploys/replicate_ca.py
"""

from deploys.components.ca import certificate_authority
from deploys.components.ha import replicate_ca

certificate_authority()
replicate_ca()
