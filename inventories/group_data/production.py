"""Settings of the production environment (every host of inventories/production.py)."""

ssh_user = "root"

etcd_cluster_name = "k8s"
step_ca_name = "etcd-k8s CA"
# A name every cert-manager answers to (DNS), so a backup can take over without reissuing.
step_ca_url = "https://step-ca.k8s.internal:9000"
step_ca_dns_names = ["step-ca.k8s.internal"]

# Releases come from an internal mirror holding upstream's files under upstream's names.
artifact_source = "mirror"
artifact_mirror_url = "https://mirror.k8s.internal/pki/"

renewal_on_calendar = "*-*-* 03:00:00"
