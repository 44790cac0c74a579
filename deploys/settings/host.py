"""What a deploy reads about one host: frozen dataclasses derived from its validated settings
and the inventory (validation.py builds them)."""

from __future__ import annotations

from dataclasses import dataclass

from etcd_step_pki.deploys.settings.options import RunOptions
from etcd_step_pki.operations.binaries import Artifact
from etcd_step_pki.operations.ca import Durations
from etcd_step_pki.operations.certificates import Certificate
from etcd_step_pki.operations.galera import GALERA_SSL_DIR, RELOAD
from etcd_step_pki.operations.monitoring import Thresholds
from etcd_step_pki.operations.profiles import Profile, galera_profile, profile


@dataclass(frozen=True)
class Renewal:
    enabled: bool
    on_calendar: str
    randomized_delay: str
    expires_in: str | None
    metrics_dir: str | None
    # How often the CA probe runs (operations/ca_probe.py), with metrics on.
    probe_interval: str


@dataclass(frozen=True)
class Cfssl:
    """File names of the earlier cfssl layout (in ssl_dir): CA files, certificate and key
    patterns with `{name}` (member or client) and `{kind}` (peer, server, client)."""

    peer_ca: str
    client_ca: str
    cert_name: str
    key_name: str


@dataclass(frozen=True)
class Etcd:
    """How etcd is installed and how a member listens."""

    artifact: Artifact
    install_from: str
    bin_dir: str
    client_port: int
    peer_port: int
    metrics_port: int | None
    data_root: str
    config_dir: str
    tls_min_version: str
    cipher_suites: tuple[str, ...]
    http_gateway: bool
    compaction_retention: str
    feature_gates: tuple[tuple[str, bool], ...]
    defrag_min_free_bytes: int
    snapshot_dir: str
    snapshot_local_dir: str

    @property
    def binary(self) -> str:
        return f"{self.bin_dir}/etcd"

    @property
    def etcdctl(self) -> str:
        return f"{self.bin_dir}/etcdctl"

    @property
    def etcdutl(self) -> str:
        return f"{self.bin_dir}/etcdutl"


@dataclass(frozen=True)
class RootPin:
    """The root every host must trust: set (`fingerprint`), or recorded on the controller
    (`record`) by the first run that found one."""

    fingerprint: str | None
    record: str


@dataclass(frozen=True)
class RootKey:
    """Where the root key is kept: on the cert-managers, or (`offline`) only in `file` on the
    controller, encrypted to the backup recipient (operations/root_key.py)."""

    offline: bool
    file: str


@dataclass(frozen=True)
class Backup:
    """Where CA backups go in S3 and how they are encrypted and kept."""

    bucket: str | None
    prefix: str  # without leading or trailing slashes
    endpoint_url: str | None  # any S3-compatible endpoint; None: AWS
    region: str
    recipient_key: str | None  # armored GnuPG public key file on the controller (not read here)
    encryption: str  # gpg | kms
    kms_key_id: str | None
    kms_endpoint_url: str | None
    retention_days: int
    # The public half of the CA's backup signing key, recorded on the controller by the first
    # backup, beside the root's record; restores verify backups with it.
    signer_record: str


@dataclass(frozen=True)
class Alerting:
    """Where Prometheus reads this tool's alert rules (deploys/monitoring.py), and when they
    fire."""

    config: str  # prometheus.yml: its rule_files must load rules_file
    rules_file: str
    service: str
    thresholds: Thresholds


@dataclass(frozen=True)
class GaleraNode:
    """A host of the CA's Galera cluster: its inventory name and the address it replicates
    on (its first)."""

    name: str
    address: str


@dataclass(frozen=True)
class Galera:
    """The CA's database with `ca_ha=active-active` (galera.py builds it): a MariaDB Galera
    node on every cert-manager, and the arbitrator's vote when one is named."""

    nodes: tuple[GaleraNode, ...]
    arbitrator: GaleraNode | None
    group: str  # Galera's cluster name

    @property
    def members(self) -> tuple[GaleraNode, ...]:
        """Every voter: the nodes, then the arbitrator."""
        return self.nodes + ((self.arbitrator,) if self.arbitrator else ())


@dataclass(frozen=True)
class Settings:
    """Everything a deploy needs to know about one host, validated."""

    host: str
    groups: tuple[str, ...]
    # The cluster this view of the host is of: a host in several clusters has one view each
    # (validation.py), and every host has a view of every cluster of the inventory.
    cluster: str
    # The host's clusters, each with the host's name in it (its member's, or its client's).
    memberships: tuple[tuple[str, str], ...]
    clusters: tuple[str, ...]  # every cluster of the inventory, in order
    ca_cluster: str  # `etcd_cluster_name`: names the CA and its records
    primary: str
    backups: tuple[str, ...]
    step: Artifact
    step_ca: Artifact
    bin_dir: str
    ca_name: str
    ca_url: str
    ca_port: int
    ca_user: str
    ca_dns_names: tuple[str, ...]
    ca_provisioner: str
    root_pin: RootPin
    ca_db_type: str
    ca_path: str
    durations: Durations
    intermediate_duration: str
    superseded_retention_days: int  # superseded CA keys and states kept (operations/custody.py)
    root_key: RootKey
    addresses: tuple[str, ...]
    node_name: str  # etcd-<cluster>-<index> for members, the short host name for clients
    etcd_user: str
    ssl_dir: str
    step_path: str
    extra_sans: tuple[str, ...]
    key_type: str
    renewal: Renewal
    etcd: Etcd
    cfssl: Cfssl
    backup: Backup
    alerting: Alerting
    run: RunOptions
    run_lock_wait: int
    # Every CA's URL, in the order hosts try them, when several serve (active-active with
    # no `step_ca_url`); empty: `ca_url` alone.
    ca_urls: tuple[str, ...] = ()
    ha: str = "standby"  # `ca_ha`
    galera_arbitrator: str | None = None  # `ca_galera_arbitrator`
    # With ca_ha=active-active, the CA's database cluster (galera.py, after every host).
    galera: Galera | None = None

    @property
    def is_primary(self) -> bool:
        return self.host == self.primary

    @property
    def is_cert_manager(self) -> bool:
        return "etcd_cert_managers" in self.groups

    @property
    def every_ca_url(self) -> tuple[str, ...]:
        """The CAs hosts reach, in the order they try them."""
        return self.ca_urls or (self.ca_url,)

    @property
    def active_active(self) -> bool:
        """step-ca on every cert-manager over the Galera database (`ca_ha`)."""
        return self.ha == "active-active"

    @property
    def galera_role(self) -> str | None:
        """`node` (MariaDB with Galera), `arbitrator` (garbd), or None: none of the CA's
        database here."""
        if self.galera is None:
            return None
        if any(n.name == self.host for n in self.galera.nodes):
            return "node"
        arbitrator = self.galera.arbitrator
        return "arbitrator" if arbitrator and arbitrator.name == self.host else None

    @property
    def galera_certificates(self) -> tuple[Certificate, ...]:
        """A Galera host's certificate for replication, for its names only."""
        role = self.galera_role
        if role is None:
            return ()
        return (
            Certificate(
                "galera",
                self.host,
                f"{GALERA_SSL_DIR}/galera.crt",
                f"{GALERA_SSL_DIR}/galera.key",
                galera_profile(self.ca_provisioner),
                reload=RELOAD[role],
            ),
        )

    @property
    def in_cluster(self) -> bool:
        """Whether the host is in this view's cluster (as a member or a client)."""
        return any(cluster == self.cluster for cluster, _ in self.memberships)

    @property
    def is_member(self) -> bool:
        """A member of this view's cluster."""
        return "etcd" in self.groups and self.in_cluster

    @property
    def holds_certificates(self) -> bool:
        """A member or client of any cluster: the host's trust, account and renewal."""
        return "etcd" in self.groups or "etcd_clients" in self.groups

    @property
    def member_of_any(self) -> bool:
        """A member of any cluster: the host's revocation list, etcd's binary."""
        return "etcd" in self.groups and bool(self.memberships)

    @property
    def data_dirs(self) -> list[str]:
        """The data directories of the host's members, of every cluster."""
        if "etcd" not in self.groups:
            return []
        return [f"{self.etcd.data_root}/{name}" for _, name in self.memberships]

    @property
    def needs_certificates(self) -> bool:
        """Certificates of this view's cluster."""
        return self.holds_certificates and self.in_cluster

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        """This cluster's: members have peer, server and client certificates, clients a
        client certificate."""
        if not self.needs_certificates:
            return ()
        return self._certificates_in(self.cluster, self.node_name)

    @property
    def host_certificates(self) -> tuple[Certificate, ...]:
        """Every certificate of the host, of all its clusters: what it issues and renews."""
        if not self.holds_certificates:
            return ()
        return tuple(
            item for cluster, name in self.memberships
            for item in self._certificates_in(cluster, name)
        )  # fmt: skip

    def _certificates_in(self, cluster: str, name: str) -> tuple[Certificate, ...]:
        kinds = ("peer", "server", "client") if "etcd" in self.groups else ("client",)
        profiles = self.profiles_of(cluster)
        return tuple(
            Certificate(
                kind,
                name,
                f"{self.ssl_dir}/{name}-{kind}.crt",
                f"{self.ssl_dir}/{name}-{kind}.key",
                profiles[kind],
            )
            for kind in kinds
        )

    def profiles_of(self, cluster: str) -> dict[str, Profile]:
        """What the CA issues each kind of a cluster's certificates for, and with which
        provisioner (operations/profiles.py)."""
        return {
            kind: profile(kind, base=self.ca_provisioner, cluster=cluster)
            for kind in ("peer", "server", "client")
        }

    @property
    def profiles(self) -> dict[str, Profile]:
        return self.profiles_of(self.cluster)

    @property
    def ca_profiles(self) -> list[Profile]:
        """Every profile the CA issues: each kind of each cluster, and Galera's."""
        items = [item for cluster in self.clusters for item in self.profiles_of(cluster).values()]
        if self.active_active:
            items.append(galera_profile(self.ca_provisioner))
        return items

    @property
    def crl_file(self) -> str:
        """The CA's revocation list on a member (DER, as step-ca serves it), read by etcd."""
        return f"{self.ssl_dir}/ca.crl"

    @property
    def root_file(self) -> str:
        return f"{self.ssl_dir}/root_ca.crt"

    @property
    def sans(self) -> list[str]:
        """What the host's certificates name: its inventory name, every address, localhost,
        127.0.0.1 and the extra SANs (never what the host says it is called)."""
        return [self.host, *self.addresses, "localhost", "127.0.0.1", *self.extra_sans]

    @property
    def address(self) -> str:
        """The address a member listens and advertises on: its first address."""
        return self.addresses[0]

    @property
    def client_certificate(self) -> Certificate:
        return next(c for c in self.certificates if c.kind == "client")

    def member_file(self, suffix: str) -> str:
        """`/etc/etcd/<member>.<suffix>`: the member's configuration and such."""
        return f"{self.etcd.config_dir}/{self.node_name}.{suffix}"

    @property
    def data_dir(self) -> str:
        return f"{self.etcd.data_root}/{self.node_name}"

    @property
    def unit(self) -> str:
        return f"{self.node_name}.service"
