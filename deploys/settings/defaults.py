"""Every setting's default, and the pinned upstream releases.

The one place defaults live: the model (model.py) requires every setting, and a host's data
is laid over these before it is validated; deploys/components pass them to pyinfra as
@deploy data defaults.
"""

from __future__ import annotations

# Upstream's published SHA-256 of each release archive, per architecture. Smallstep publishes
# them in each release's checksums.txt (signed with cosign); the step and step-ca sums below
# are the ones of step_linux_0.30.6_*.tar.gz and step-ca_linux_0.30.2_*.tar.gz there.
STEP_CA_CHECKSUMS = {
    "0.30.2": {
        "amd64": "126615795bafe3f2d3f890e2d628fa6e2857315fb48d0671d34b23047cc37d73",
        "arm64": "43f79d1b0b8cab9895dbadd46b0a014006f682a6b1341e1fadf0be31d4b9f4b4",
    },
}
STEP_CHECKSUMS = {
    "0.30.6": {
        "amd64": "e44a5dc5f880a694b24a0f2941a69a81b0bc6ee053170fdfde18453d4d5816de",
        "arm64": "eff511c3e6797039702e74fada62b10b079e413742f925703e5b7d810e611619",
    },
}
# etcd publishes SHA256SUMS with each release. The newest patch release of each branch whose
# sums could be checked here, each against kubespray's table of upstream's sums
# (kubernetes-sigs/kubespray, roles/kubespray_defaults/vars/main/checksums.yml,
# etcd_binary_checksums):
ETCD_CHECKSUMS = {
    # 3.5: for clusters that upgrade from it; the last branch with the v2 store. Kubespray
    # master 46dbdd39 (2026-08-21, "Patch versions updates (#13423)").
    "3.5.21": {
        "amd64": "adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c",
        "arm64": "95bf6918623a097c0385b96f139d90248614485e781ec9bee4768dbb6c79c53f",
    },
    "3.5.33": {
        "amd64": "5025b5b24d81a9616b6e284ccd439b9a3df055ef8fdcdc142af3ec8f6a3b3c95",
        "arm64": "0764c5c0acef155f4bfa0487791cc5776adef66315bf16ec0653883bfd463a90",
    },
    # 3.6: maintained, the default. Kubespray master 46dbdd39, same commit.
    "3.6.14": {
        "amd64": "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5",
        "arm64": "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e",
    },
    # 3.7: the current stable branch. Kubespray pull request #13363 ("Upgrade etcd to 3.7 for
    # Kubernetes 1.36", commit 84072210, 2026-07-09), same file.
    "3.7.0": {
        "amd64": "b05cb07f5686dab8f9cdab89986b44f0dd24aaf5c627176aff325e21fa56f9f0",
        "arm64": "e61a0954fe6a3003ee20f45e773e12e15c58323ea485deb8a55d065170cdafe8",
    },
}

DEFAULTS: dict[str, object] = {
    # The cluster's name; with several clusters on one CA, the CA's (its records on the
    # controller are named after it).
    "etcd_cluster_name": "k8s",
    # Several etcd clusters on this CA: the host's clusters in order, each with its own
    # values of model.CLUSTER_SETTINGS, e.g. {"k8s": {}, "k8s-events":
    # {"etcd_client_port": 2381, "etcd_peer_port": 2382}}. None: one, etcd_cluster_name.
    "etcd_clusters": None,
    # Artifacts
    "step_version": "0.30.6",
    "step_ca_version": "0.30.2",
    "step_checksums": None,  # {arch: sha256}; default: the pinned upstream table above
    "step_ca_checksums": None,
    "etcd_version": "3.6.14",  # see ETCD_CHECKSUMS and the README
    "etcd_checksums": None,
    "etcd_install_from": "archive",  # archive (artifact_source) | package (the distribution's)
    "etcd_client_port": 2379,
    "etcd_peer_port": 2380,
    # etcd's /metrics and /health over plain HTTP on the member's address, for Prometheus
    # (no client certificate needed); None: only over the mTLS client port
    "etcd_metrics_port": None,
    "etcd_data_root": "/var/lib/etcd",  # each member's data in <root>/<member>
    "etcd_config_dir": "/etc/etcd",
    "etcd_tls_min_version": "TLS1.2",
    "etcd_cipher_suites": [],  # empty: etcd's defaults
    "etcd_compaction_retention": "1h",  # etcd's periodic auto-compaction
    # etcd's feature gates (3.6 and later), e.g. {"InitialCorruptCheck": True}; {}: etcd's
    # defaults. Names the release lacks are refused (operations/etcd/releases.py).
    "etcd_feature_gates": {},
    "etcd_defrag_min_free_bytes": 64 * 1024 * 1024,  # etcd_maintenance.py: worth a defrag
    "etcd_snapshot_dir": "/var/backups/etcd",  # on the member that takes snapshots
    "etcd_snapshot_local_dir": "backups/etcd",  # on the controller, relative to the cwd
    "artifact_source": "upstream",  # upstream | mirror | local
    "artifact_mirror_url": None,
    "artifact_dir": None,
    "bin_dir": "/opt/bin",
    # The CA
    "step_ca_name": "etcd-k8s CA",
    "step_ca_url": None,  # default: https://<primary cert-manager>:<port>
    "step_ca_port": 9000,
    "step_ca_user": "step",  # the account step-ca runs as; it owns the CA's database only
    "step_ca_dns_names": [],  # extra names for the CA's TLS certificate
    "step_ca_provisioner": "etcd-pki",
    # The root every host must trust: SHA-256 as `step certificate fingerprint` prints it.
    # None: the first run records the root it finds in step_ca_root_record, and later runs
    # refuse another (unless run with ca_accept_new_root=true).
    "step_ca_root_fingerprint": None,
    "step_ca_root_record": None,  # on the controller; None: <inventory>.<cluster>.root-sha256
    "step_ca_db_type": "bbolt",
    "step_ca_path": "/etc/step-ca",
    "step_cert_default_duration": "17520h",
    "step_cert_max_duration": "26280h",
    "step_cert_min_duration": "1h",
    # Validity of an intermediate made by deploys/rotate_intermediate.py (never past the root's)
    "step_ca_intermediate_duration": "87600h",
    # The cert-manager that runs step-ca: the first of etcd_cert_managers unless a failover
    # names another (deploys/failover.py --data ca_active=<backup>)
    "ca_active": None,
    # Backups of the CA state to S3 (deploys/backup_ca.py, deploys/restore_ca.py)
    "ca_backup_bucket": None,
    "ca_backup_prefix": "step-ca",
    "ca_backup_endpoint_url": None,  # any S3-compatible endpoint; None: AWS
    "ca_backup_region": "us-east-1",
    "ca_backup_recipient_key": None,  # armored GnuPG public key file on the controller
    # gpg: to ca_backup_recipient_key; kms: envelope encryption with a data key from AWS KMS
    # (GenerateDataKey under ca_backup_kms_key_id, wrapped key stored beside the backup)
    "ca_backup_encryption": "gpg",
    "ca_backup_kms_key_id": None,  # key id, ARN or alias/<name>
    "ca_backup_kms_endpoint_url": None,  # None: AWS KMS in ca_backup_region
    "ca_backup_retention_days": 30,
    # This host's addresses (default: its SSH hostname when that is an IP address)
    "node_addresses": None,
    # Node certificates
    "etcd_member_index": None,  # default: N of an inventory name etcd-<cluster>-N
    "etcd_user": "etcd",
    "ssl_dir": "/etc/etcd/ssl",
    "step_path": "/etc/step",  # the step CLI's $STEPPATH on nodes (trust, defaults)
    "cert_extra_sans": [],
    "cert_key_type": "EC",  # EC (P-256), OKP (Ed25519) or RSA (2048)
    # Renewal
    "renewal_enabled": True,
    "renewal_on_calendar": "*-*-* 03:00:00",
    "renewal_randomized_delay": "1h",
    "renewal_expires_in": None,  # None: step's 66% of the lifetime used; or "80%", "720h" left
    # The earlier cfssl layout in ssl_dir (deploys/migrate_cfssl.py)
    "cfssl_peer_ca": "peer-ca.pem",
    "cfssl_client_ca": "client-ca.pem",
    "cfssl_cert_name": "{name}-{kind}.pem",
    "cfssl_key_name": "{name}-{kind}-key.pem",
    # node-exporter textfile collector directory for renewal metrics; None: no metrics
    "metrics_textfile_dir": None,
    # Alerting (deploys/monitoring.py on the hosts of the `prometheus` group)
    "prometheus_config": "/etc/prometheus/prometheus.yml",  # its rule_files must load:
    "prometheus_rules_file": "/etc/prometheus/etcd-step-pki.rules.yml",
    "prometheus_service": "prometheus",
    "alert_certificate_expiry_days": 7,  # a node certificate expiring within this
    "alert_ca_expiry_days": 90,  # the root or the intermediate expiring within this
    # A certificate still not renewed this long after it became due (the daily timer and
    # its randomized delay had their chance)
    "alert_renewal_overdue_after": "26h",
    "alert_metrics_stale_after": "50h",  # no renewal check wrote metrics for this long
    "alert_etcd_job": "etcd",  # the Prometheus job that scrapes etcd_metrics_port
    # etcd's own conditions, at the thresholds of etcd's monitoring mixin (contrib/mixin)
    "alert_etcd_leader_changes": 4,  # leader changes in 15 minutes
    "alert_etcd_grpc_failed_percent": 1,  # of a gRPC method's requests failing (warning)
    "alert_etcd_grpc_failed_critical_percent": 5,  # (critical)
    "alert_etcd_grpc_slow_seconds": 0.15,  # 99th percentile of unary requests
    "alert_etcd_peer_rtt_seconds": 0.15,  # 99th percentile of round trips to a peer
    "alert_etcd_proposals_failed_per_second": 5,  # failed Raft proposals, over 15 minutes
    "alert_etcd_fsync_seconds": 0.5,  # 99th percentile of WAL fsyncs (warning)
    "alert_etcd_fsync_critical_seconds": 1,  # (critical)
    "alert_etcd_commit_seconds": 0.25,  # 99th percentile of backend commits
    "alert_etcd_quota_percent": 95,  # of the backend quota the database fills
    "alert_etcd_fragmentation_ratio": 0.5,  # share of the database in use, below which
}
