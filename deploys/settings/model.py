"""The typed model of one host's settings: each setting declared once, with its type, its
constraint, its default and one line of documentation.

DEFAULTS (the deploys' data defaults) and the README's reference are derived from these
fields. The model is strict: a value of the wrong type is refused, not converted (`"yes"` is
no boolean, `"9000"` no port). Checks that read several settings raise `Invalid`, which names
the setting to change.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, PlainValidator, model_validator

from etcd_step_pki.deploys.settings import combinations
from etcd_step_pki.deploys.settings.options import RunOptions
from etcd_step_pki.deploys.settings.values import (
    CLUSTER_SETTINGS,
    AbsolutePath,
    ArtifactSource,
    BackupEncryption,
    CaHa,
    Checksums,
    CipherSuite,
    ClusterName,
    Days,
    DbType,
    DnsNames,
    Duration,
    FileName,
    Fingerprint,
    HttpsUrl,
    HttpUrl,
    InstallFrom,
    IpAddress,
    KeyType,
    Line,
    NamePattern,
    ObjectPrefix,
    Percent,
    Port,
    Positive,
    Ratio,
    TimerValue,
    TlsVersion,
    UserName,
    Version,
    _between,
    _check,
    _clusters,
    _expires_in,
    _listed,
    _one_or_listed,
    setting,
)

__all__ = ["CLUSTER_SETTINGS", "HostSettings", "KeyType"]


class HostSettings(RunOptions):
    """One host's settings as written (its data over DEFAULTS), every value checked; the
    per-run settings are RunOptions'."""

    etcd_cluster_name: ClusterName = setting("k8s", "members are `etcd-<cluster>-<index>`")
    run_lock_wait: Annotated[int, _between(0, 3600, "a number of seconds (0 to 3600)")] = setting(
        60,
        "seconds a run that changes hosts waits for another such run on the same hosts to end "
        "before it refuses, naming that run (`--dry` and `status.py` take no lock)",
    )
    etcd_clusters: Annotated[dict[str, dict[str, Any]] | None, PlainValidator(_clusters)] = setting(
        None,
        "several etcd clusters on this CA: the host's clusters in order, each with its own "
        f"values of {', '.join(f'`{name}`' for name in CLUSTER_SETTINGS)} "
        '(see "Several etcd clusters on one CA")',
        shown="none (one cluster: `etcd_cluster_name`)",
    )
    step_version: Version = setting("0.30.6", "step CLI release")
    step_ca_version: Version = setting("0.30.2", "step-ca release")
    step_checksums: Checksums = setting(
        None,
        "`{arch: sha256}` of the step CLI's archive (amd64, arm64) for the version in use, or "
        "`{version: {arch: sha256}}` to pin several (e.g. across a rolling upgrade)",
        shown="pinned",
    )
    step_ca_checksums: Checksums = setting(
        None, "checksums of step-ca's archive, as `step_checksums`", shown="pinned"
    )
    etcd_version: Version = setting(
        "3.6.14",
        'etcd release; pinned: 3.5.21, 3.5.33, 3.6.14, 3.7.0 (see "etcd releases, upgrades and '
        'downgrades"); a release of another branch than 3.5, 3.6 or 3.7 is refused',
    )
    etcd_checksums: Checksums = setting(
        None,
        "checksums of etcd's archive, as `step_checksums`; a release that is not pinned needs them",
        shown="pinned",
    )
    etcd_install_from: InstallFrom = setting(
        "archive",
        "`archive` (release archive by `artifact_source`) or `package` (the distribution's "
        "`etcd-server`/`etcd-client`)",
    )
    etcd_client_port: Port = setting(2379, "etcd's client port")
    etcd_peer_port: Port = setting(2380, "etcd's peer port")
    etcd_metrics_port: Port | None = setting(
        None,
        "members serve `/metrics` and `/health` over plain HTTP on this port of their address (per "
        "cluster in `etcd_clusters`)",
    )
    etcd_data_root: AbsolutePath = setting(
        "/var/lib/etcd", "a member's data is in `<root>/<member>`"
    )
    etcd_config_dir: AbsolutePath = setting(
        "/etc/etcd",
        "a member's configuration is `<dir>/<member>.env`: etcd's settings as `ETCD_*` variables, "
        "read by its unit (`EnvironmentFile=`); etcd reads its CRL files only this way, a "
        "configuration file (`--config-file`) cannot name them",
    )
    etcd_http_gateway: bool = setting(
        False,
        "serve etcd's JSON gateway (`/v3/` over HTTP) on the client port; etcd cannot then check "
        "that a client certificate is this cluster's (etcd-io/etcd#15755): every client "
        "certificate of the CA, and every member's peer and server certificate, is a client",
    )
    etcd_tls_min_version: TlsVersion = setting("TLS1.2", "`TLS1.2` or `TLS1.3`")
    etcd_cipher_suites: Annotated[tuple[CipherSuite, ...], BeforeValidator(_listed)] = setting(
        [],
        "Go TLS 1.2 cipher suite names that etcd accepts (insecure and TLS 1.3 names refused); "
        "none with `etcd_tls_min_version` `TLS1.3`",
        shown="`[]` (etcd's defaults)",
    )
    etcd_compaction_retention: Duration = setting("1h", "etcd's periodic auto-compaction")
    etcd_feature_gates: dict[str, bool] = setting(
        {},
        'etcd\'s feature gates, e.g. `{"InitialCorruptCheck": true}`: 3.6 and later only, and '
        "only the gates the release has (refused before any host otherwise)",
        shown="`{}` (etcd's defaults)",
    )
    etcd_defrag_min_free_bytes: Annotated[int, _between(0, None, "a number of bytes")] = setting(
        67108864,
        "free space that makes `etcd_maintenance.py` defragment a member",
        shown="`67108864` (64 MiB)",
    )
    etcd_snapshot_dir: AbsolutePath = setting("/var/backups/etcd", "snapshots on the member")
    etcd_snapshot_local_dir: Line = setting(
        "backups/etcd", "snapshots on the controller (relative to the working directory)"
    )
    artifact_source: ArtifactSource = setting(
        "upstream",
        "`upstream` (release URLs), `mirror` (`artifact_mirror_url`/`<file>`), `local` (uploaded "
        "from `artifact_dir` on the controller: air-gapped sites)",
    )
    artifact_mirror_url: HttpUrl | None = setting(
        None, "HTTP(S) base URL of a mirror holding the release files under upstream's names"
    )
    artifact_dir: Line | None = setting(
        None, "directory on the controller holding the release files"
    )
    bin_dir: AbsolutePath = setting("/opt/bin", "where step, step-ca and etcd are installed")
    step_ca_name: Line = setting("etcd-k8s CA", "name of the root and intermediate")
    step_ca_url: HttpsUrl | None = setting(
        None,
        "where nodes reach step-ca; its host name is in the CA's TLS certificate",
        shown="`https://<primary cert-manager>:<port>`",
    )
    step_ca_port: Port = setting(9000, "step-ca's port")
    step_ca_user: UserName = setting(
        "step",
        "the system account step-ca runs as on every cert-manager (made by the deploys, neither "
        "root nor `etcd_user`): it owns the CA's database (`<step_ca_path>/db`) and nothing else; "
        "keys, passwords and `ca.json` stay root's (0400/0600) and reach step-ca as systemd "
        "credentials",
    )
    step_ca_dns_names: DnsNames = setting(
        [],
        "more names for the CA's TLS certificate (it always has the URL's name, every "
        "cert-manager's name and address, localhost)",
    )
    step_ca_provisioner: Line = setting(
        "etcd-pki",
        "the JWK provisioner's name; the provisioners of the certificate profiles are named after "
        'it (see "Which certificate is accepted where")',
    )
    step_ca_root_fingerprint: Fingerprint | None = setting(
        None,
        "the root every host may trust (SHA-256, as `step certificate fingerprint` prints it; "
        "colons and upper case accepted). Node trust, replication and restores refuse any other "
        "root, naming both, before anything changes",
    )
    step_ca_root_record: Line | None = setting(
        None,
        "without `step_ca_root_fingerprint`: where the run that initialises the CA records its "
        "root (commit it with the inventory); a run without it, or with another root, trusts "
        "nothing unless run with `--data ca_accept_new_root=true`, which records the root found",
        shown="`<inventory>.<cluster>.root-sha256` beside the inventory file",
    )
    step_ca_db_type: DbType = setting(
        "bbolt",
        "step-ca's database: one file, simple to back up and replicate, whose records revocation "
        "reads (no other type is accepted: these deploys could not revoke from its records)",
    )
    step_ca_path: AbsolutePath = setting("/etc/step-ca", "the CA's `$STEPPATH`")
    ca_ha: CaHa = setting(
        "standby",
        "`standby`: step-ca runs on the first cert-manager, the others wait with a copy of its "
        "state; `active-active`: step-ca on every cert-manager over one MariaDB Galera database "
        '(see "Active-active CA")',
    )
    ca_galera_arbitrator: Line | None = setting(
        None,
        "with `active-active`: the inventory host (no cert-manager) that runs Galera's "
        "arbitrator, `garbd`, a third vote where two cert-managers alone would lose their "
        "majority with one host",
        shown="none",
    )
    step_cert_default_duration: Duration = setting(
        "17520h", "lifetime of issued certificates (2 years)"
    )
    step_cert_max_duration: Duration = setting(
        "26280h",
        "the longest lifetime of issued certificates; the default must lie between the bounds",
    )
    step_cert_min_duration: Duration = setting("1h", "the shortest lifetime of issued certificates")
    step_ca_intermediate_duration: Duration = setting(
        "87600h",
        "lifetime of an intermediate made by `rotate_intermediate.py`, never past the root's end",
        shown="`87600h` (10 years, as `step ca init`)",
    )
    ca_backup_bucket: Line | None = setting(None, "S3 bucket of CA backups")
    ca_backup_prefix: ObjectPrefix = setting(
        "step-ca",
        "key prefix: `<prefix>/<YYYY>/<MM>/ca-backup-<time>.tar.gz.gpg`, `<prefix>/latest`",
    )
    ca_backup_endpoint_url: HttpUrl | None = setting(
        None, "any S3-compatible endpoint", shown="none (AWS)"
    )
    ca_backup_region: Line = setting("us-east-1", "the bucket's region")
    ca_backup_recipient_key: Line | None = setting(
        None,
        "file on the controller with the armored GnuPG public key backups are encrypted to (with "
        "`ca_backup_encryption=gpg`; also the recipient of encrypted etcd snapshots)",
    )
    ca_backup_encryption: BackupEncryption = setting(
        "gpg",
        "`gpg` (to `ca_backup_recipient_key`) or `kms` (envelope encryption: a data key from AWS "
        'KMS per backup, see "KMS-wrapped CA backups")',
    )
    ca_backup_kms_key_id: Line | None = setting(
        None,
        "with `kms`: the KMS key that wraps the data keys (key id, ARN or `alias/<name>`); "
        "required",
    )
    ca_backup_kms_endpoint_url: HttpUrl | None = setting(
        None,
        "another KMS endpoint (a VPC endpoint, a test server)",
        shown="none (AWS KMS in `ca_backup_region`)",
    )
    ca_backup_retention_days: Days = setting(
        30, "this CA's backups older than this are deleted (never its newest)"
    )
    ca_superseded_retention_days: Days = setting(
        30, "a rotated intermediate's old key and the CA state a restore replaced: kept this long"
    )
    ca_root_key_offline: bool = setting(
        False,
        "after initialisation the root key leaves every cert-manager, encrypted to "
        '`ca_backup_recipient_key` beside the inventory (see "The root key offline")',
    )
    node_addresses: Annotated[tuple[IpAddress, ...] | None, BeforeValidator(_one_or_listed)] = (
        setting(
            None,
            "the host's IP addresses: SANs; a member listens on the first",
            shown="the SSH hostname, when it is an IP",
        )
    )
    etcd_member_index: Annotated[int, _between(1, None, "a positive integer")] | None = setting(
        None,
        "a member's index when its inventory name is not of that form; names must be unique",
        shown="from the host name `etcd-<cluster>-<N>`",
    )
    etcd_user: UserName = setting("etcd", "owner of keys and certificates, and etcd's user")
    ssl_dir: AbsolutePath = setting("/etc/etcd/ssl", "certificates and keys on nodes")
    step_path: AbsolutePath = setting(
        "/etc/step", "the step CLI's `$STEPPATH` on nodes (trust, defaults)"
    )
    cert_extra_sans: DnsNames = setting([], "more SANs for a host's certificates")
    cert_key_type: KeyType = setting("EC", "`EC` (P-256), `OKP` (Ed25519) or `RSA` (2048)")
    renewal_enabled: bool = setting(
        True, "renewal timers on (disabled timers keep their units for manual use)"
    )
    renewal_on_calendar: TimerValue = setting("*-*-* 03:00:00", "when the timers run")
    renewal_randomized_delay: TimerValue = setting("1h", "spread of the timers")
    renewal_expires_in: Annotated[str, _check(_expires_in, "a percentage or duration")] | None = (
        setting(
            None,
            "renewal point: a share of the lifetime used (`80%`) or what is left (`720h`)",
            shown="step's default: 66% of the lifetime used",
        )
    )
    cfssl_peer_ca: FileName = setting(
        "peer-ca.pem", "cfssl migration (`migrate_cfssl.py`): the peer CA's file in `ssl_dir`"
    )
    cfssl_client_ca: FileName = setting(
        "client-ca.pem", "cfssl migration: the client CA's file in `ssl_dir`"
    )
    cfssl_cert_name: NamePattern = setting(
        "{name}-{kind}.pem",
        "cfssl migration: a certificate's file (`{name}`: member or client, `{kind}`: peer, "
        "server, client)",
    )
    cfssl_key_name: NamePattern = setting(
        "{name}-{kind}-key.pem", "cfssl migration: a key's file, as `cfssl_cert_name`"
    )
    metrics_textfile_dir: AbsolutePath | None = setting(
        None, "node-exporter textfile directory for renewal metrics", shown="none (no metrics)"
    )
    ca_probe_interval: Duration = setting(
        "30s",
        "with `metrics_textfile_dir`: how often each host with certificates asks the CA's "
        "health for its metrics (longer than the 5 s a probe may wait)",
    )
    prometheus_config: AbsolutePath = setting(
        "/etc/prometheus/prometheus.yml",
        "on the `prometheus` hosts: its `rule_files` must load `prometheus_rules_file`",
    )
    prometheus_rules_file: AbsolutePath = setting(
        "/etc/prometheus/etcd-step-pki.rules.yml", "the alert rules `monitoring.py` writes"
    )
    prometheus_service: Line = setting("prometheus", "the unit reloaded after a change")
    alert_certificate_expiry_days: Days = setting(7, "a node certificate expiring this soon alerts")
    alert_ca_expiry_days: Days = setting(90, "the root or intermediate expiring within this alerts")
    alert_renewal_overdue_after: Duration = setting(
        "26h", "how long a certificate may stay due before it is overdue"
    )
    alert_metrics_stale_after: Duration = setting("50h", "renewal checks silent this long alert")
    alert_crl_refresh_failing_after: Duration = setting(
        "6h", "CRL refreshes failing this long alert"
    )
    alert_ca_down_after: Duration = setting(
        "2m", "a CA that no host's probe reaches this long alerts (also one host cut off from it)"
    )
    alert_etcd_job: Line = setting("etcd", "the Prometheus job that scrapes `etcd_metrics_port`")
    alert_etcd_leader_changes: Annotated[int, _between(1, None, "a number of leader changes")] = (
        setting(4, "leader changes within 15 minutes that alert")
    )
    alert_etcd_grpc_failed_percent: Percent = setting(
        1, "the share of a gRPC method's requests failing (%) that alerts as a warning"
    )
    alert_etcd_grpc_failed_critical_percent: Percent = setting(
        5, "the share of a gRPC method's requests failing (%) that alerts as critical"
    )
    alert_etcd_grpc_slow_seconds: Positive = setting(
        0.15,
        "the 99th percentile of unary gRPC requests that alerts (needs etcd's "
        "`--metrics=extensive`)",
    )
    alert_etcd_peer_rtt_seconds: Positive = setting(
        0.15, "the 99th percentile of round trips to a peer that alerts"
    )
    alert_etcd_proposals_failed_per_second: Positive = setting(
        5, "failed Raft proposals a second (over 15 minutes) that alert"
    )
    alert_etcd_fsync_seconds: Positive = setting(
        0.5, "the 99th percentile of WAL fsyncs that alerts as a warning"
    )
    alert_etcd_fsync_critical_seconds: Positive = setting(
        1, "the 99th percentile of WAL fsyncs that alerts as critical"
    )
    alert_etcd_commit_seconds: Positive = setting(
        0.25, "the 99th percentile of backend commits that alerts"
    )
    alert_etcd_quota_percent: Percent = setting(
        95, "the share of its backend quota (%) a database may fill before it alerts"
    )
    alert_etcd_fragmentation_ratio: Ratio = setting(
        0.5, "the share of a database in use (above 0, below 1) under which it alerts as fragmented"
    )

    @model_validator(mode="after")
    def combinations_valid(self) -> HostSettings:
        """Checks that read several settings (combinations.py)."""
        combinations.check(self)
        return self
