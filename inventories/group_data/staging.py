"""Settings of the staging environment (every host of inventories/staging.py)."""

ssh_user = "root"

etcd_cluster_name = "stg"
step_ca_name = "etcd-stg CA"

# An air-gapped site: the release archives are uploaded from the controller.
artifact_source = "local"
artifact_dir = "/srv/pki-artifacts"

# Shorter certificates in staging, to see renewals happen.
step_cert_default_duration = "720h"
renewal_expires_in = "50%"
