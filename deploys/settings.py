"""Settings of the etcd PKI: defaults, and validation of every host's data before any change.

Deploys call `load_settings()` first. It reads each host's data (inventory, group data,
these defaults), checks it, and stops the run with a message naming the setting and the host
when something is wrong, before any operation has run.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pyinfra import host, state
from pyinfra.api.exceptions import PyinfraError
from pyinfra.api.host import Host
from pyinfra.api.inventory import Inventory

# Upstream's checksums.txt of each release, per architecture.
STEP_CA_CHECKSUMS = {
    "0.30.2": {
        "amd64": "126615795bafe3f2d3f890e2d628fa6e2857315fb48d0671d34b23047cc37d73",
        "arm64": "43f79d1b0b8cab9895dbadd46b0a014006f682a6b1341e1fadf0be31d4b9f4b4",
    },
}
ETCD_CHECKSUMS = {
    "3.5.21": {
        "amd64": "adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c",
        "arm64": "95bf6918623a097c0385b96f139d90248614485e781ec9bee4768dbb6c79c53f",
    },
}
STEP_CHECKSUMS = {
    "0.30.6": {
        "amd64": "e44a5dc5f880a694b24a0f2941a69a81b0bc6ee053170fdfde18453d4d5816de",
        "arm64": "eff511c3e6797039702e74fada62b10b079e413742f925703e5b7d810e611619",
    },
}

DEFAULTS: dict[str, object] = {
    "etcd_cluster_name": "k8s",
    # Artifacts
    "step_version": "0.30.6",
    "step_ca_version": "0.30.2",
    "step_checksums": None,  # {arch: sha256}; default: the pinned upstream table above
    "step_ca_checksums": None,
    "etcd_version": "3.5.21",
    "etcd_checksums": None,
    "etcd_install_from": "archive",  # archive (artifact_source) | package (the distribution's)
    "etcd_client_port": 2379,
    "etcd_peer_port": 2380,
    "etcd_data_root": "/var/lib/etcd",  # each member's data in <root>/<member>
    "etcd_config_dir": "/etc/etcd",
    "etcd_tls_min_version": "TLS1.2",
    "etcd_cipher_suites": [],  # empty: etcd's defaults
    "etcd_compaction_retention": "1h",  # etcd's periodic auto-compaction
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
    "step_ca_dns_names": [],  # extra names for the CA's TLS certificate
    "step_ca_provisioner": "etcd-pki",
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
}

KEY_TYPES = {"EC": ("EC", "P-256"), "OKP": ("OKP", "Ed25519"), "RSA": ("RSA", None)}
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
ARTIFACT_SOURCES = ("upstream", "mirror", "local")
DB_TYPES = ("bbolt", "badgerv2", "badgerv1", "badger", "mysql", "postgresql")
GROUPS = ("etcd", "etcd_cert_managers", "etcd_clients")
UPSTREAM_URLS = {
    "step": "https://github.com/smallstep/cli/releases/download/v{version}/{file}",
    "step-ca": "https://github.com/smallstep/certificates/releases/download/v{version}/{file}",
    "etcd": "https://github.com/etcd-io/etcd/releases/download/v{version}/{file}",
}
# Release file names and the binaries each archive provides.
ARCHIVES = {
    "step": ("step_linux_{version}_{arch}.tar.gz", ("step",)),
    "step-ca": ("step-ca_linux_{version}_{arch}.tar.gz", ("step-ca",)),
    "etcd": ("etcd-v{version}-linux-{arch}.tar.gz", ("etcd", "etcdctl", "etcdutl")),
}

_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})*\.?$")


class SettingsError(PyinfraError):
    """Bad configuration: raised before any host is changed."""


def _fail(host: str, setting: str, problem: str) -> SettingsError:
    return SettingsError(f"invalid setting `{setting}` for host {host}: {problem}")


def parse_duration(value: object) -> float:
    """Seconds of a Go duration string (`17520h`, `1h30m`), as step-ca reads them."""
    if not isinstance(value, str) or not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration such as 17520h or 90m")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(value))


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_dns_name(value: str) -> bool:
    return bool(_DNS_NAME.match(value)) and not is_ip(value)


@dataclass(frozen=True)
class Artifact:
    """One release archive of one binary: where it comes from and its checksum per arch."""

    binary: str
    version: str
    checksums: dict[str, str]
    source: str
    mirror_url: str | None
    local_dir: str | None

    @property
    def binaries(self) -> tuple[str, ...]:
        """The binaries installed from the archive; the first one tells the version."""
        return ARCHIVES[self.binary][1]

    def file_name(self, arch: str) -> str:
        return ARCHIVES[self.binary][0].format(version=self.version, arch=arch)

    def url(self, arch: str) -> str:
        name = self.file_name(arch)
        if self.source == "mirror":
            return f"{(self.mirror_url or '').rstrip('/')}/{name}"
        return UPSTREAM_URLS[self.binary].format(version=self.version, file=name)

    def local_path(self, arch: str) -> str:
        return f"{(self.local_dir or '').rstrip('/')}/{self.file_name(arch)}"


@dataclass(frozen=True)
class Durations:
    default: str
    max: str
    min: str


@dataclass(frozen=True)
class Certificate:
    """One leaf certificate of a node: its kind and where its files are."""

    kind: str  # peer | server | client
    subject: str
    crt: str
    key: str

    @property
    def unit(self) -> str:
        """The renewal units' name, `step-renew-<member>-<kind>`."""
        return f"step-renew-{self.subject}-{self.kind}"


@dataclass(frozen=True)
class Renewal:
    enabled: bool
    on_calendar: str
    randomized_delay: str
    expires_in: str | None
    metrics_dir: str | None


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
    data_root: str
    config_dir: str
    tls_min_version: str
    cipher_suites: tuple[str, ...]
    compaction_retention: str
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
class Settings:
    """Everything a deploy needs to know about one host, validated."""

    host: str
    groups: tuple[str, ...]
    cluster: str
    primary: str
    backups: tuple[str, ...]
    step: Artifact
    step_ca: Artifact
    bin_dir: str
    ca_name: str
    ca_url: str
    ca_port: int
    ca_dns_names: tuple[str, ...]
    ca_provisioner: str
    ca_db_type: str
    ca_path: str
    durations: Durations
    intermediate_duration: str
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

    @property
    def is_primary(self) -> bool:
        return self.host == self.primary

    @property
    def is_cert_manager(self) -> bool:
        return "etcd_cert_managers" in self.groups

    @property
    def is_member(self) -> bool:
        return "etcd" in self.groups

    @property
    def needs_certificates(self) -> bool:
        return self.is_member or "etcd_clients" in self.groups

    @property
    def certificates(self) -> tuple[Certificate, ...]:
        """Members: peer, server and client certificates; clients: a client certificate."""
        if not self.needs_certificates:
            return ()
        kinds = ("peer", "server", "client") if self.is_member else ("client",)
        return tuple(
            Certificate(
                kind,
                self.node_name,
                f"{self.ssl_dir}/{self.node_name}-{kind}.crt",
                f"{self.ssl_dir}/{self.node_name}-{kind}.key",
            )
            for kind in kinds
        )

    @property
    def root_file(self) -> str:
        return f"{self.ssl_dir}/root_ca.crt"

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


def _data(host: Host, key: str) -> object:
    return host.data.get(key, DEFAULTS[key])


def _artifact(host: Host, binary: str, table: dict[str, dict[str, str]]) -> Artifact:
    prefix = binary.replace("-", "_")
    version = _data(host, f"{prefix}_version")
    if not isinstance(version, str) or not re.match(r"^\d+\.\d+\.\d+$", version):
        raise _fail(host.name, f"{prefix}_version", f"{version!r} is not a version like 0.30.2")
    checksums = _data(host, f"{prefix}_checksums")
    if checksums is None:
        checksums = table
    # Either {arch: sha256} for the version in use, or {version: {arch: sha256}}.
    if isinstance(checksums, dict) and any(re.match(r"^\d+\.\d+\.\d+$", k) for k in checksums):
        checksums = checksums.get(version, {})
    if not isinstance(checksums, dict):
        raise _fail(host.name, f"{prefix}_checksums", "must map an architecture to a SHA-256")
    for arch, digest in checksums.items():
        if arch not in ("amd64", "arm64"):
            raise _fail(host.name, f"{prefix}_checksums", f"unknown architecture {arch!r}")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise _fail(host.name, f"{prefix}_checksums", f"{arch}: {digest!r} is not a SHA-256")
    source = _data(host, "artifact_source")
    if source not in ARTIFACT_SOURCES:
        raise _fail(host.name, "artifact_source", f"{source!r} is not one of {ARTIFACT_SOURCES}")
    mirror, local = _data(host, "artifact_mirror_url"), _data(host, "artifact_dir")
    if source == "mirror" and not (isinstance(mirror, str) and urlsplit(mirror).scheme):
        raise _fail(host.name, "artifact_mirror_url", "an http(s) URL is needed with mirror")
    if source == "local" and not isinstance(local, str):
        raise _fail(host.name, "artifact_dir", "a directory on the controller is needed")
    return Artifact(binary, version, dict(checksums), source, mirror, local)


def _durations(host: Host) -> Durations:
    values = {}
    for kind in ("default", "max", "min"):
        key = f"step_cert_{kind}_duration"
        try:
            values[kind] = (_data(host, key), parse_duration(_data(host, key)))
        except ValueError as error:
            raise _fail(host.name, key, str(error)) from None
    if not values["min"][1] <= values["default"][1] <= values["max"][1]:
        raise _fail(
            host.name,
            "step_cert_default_duration",
            f"{values['default'][0]} must lie between step_cert_min_duration "
            f"({values['min'][0]}) and step_cert_max_duration ({values['max'][0]})",
        )
    return Durations(values["default"][0], values["max"][0], values["min"][0])


def _addresses(host: Host) -> tuple[str, ...]:
    value = _data(host, "node_addresses")
    if value is None:
        ssh_host = host.data.get("ssh_hostname") or host.name
        return (ssh_host,) if is_ip(ssh_host) else ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, str) and is_ip(v) for v in value
    ):
        raise _fail(host.name, "node_addresses", f"{value!r} is not a list of IP addresses")
    return tuple(value)


def _ca_url(host: Host, primary: str, port: int) -> str:
    url = _data(host, "step_ca_url") or f"https://{primary}:{port}"
    parts = urlsplit(str(url))
    if parts.scheme != "https" or not parts.hostname:
        raise _fail(host.name, "step_ca_url", f"{url!r} is not an https:// URL")
    return str(url).rstrip("/")


def _node_name(host: Host, groups: tuple[str, ...], cluster: str) -> str:
    if "etcd" not in groups:
        return host.name.split(".")[0]
    index = _data(host, "etcd_member_index")
    if index is None:
        match = re.match(rf"^etcd-{re.escape(cluster)}-(\d+)(?:\.|$)", host.name)
        if not match:
            raise _fail(
                host.name,
                "etcd_member_index",
                f"the name is not etcd-{cluster}-<N>: set the member's index",
            )
        index = int(match.group(1))
    if not isinstance(index, int) or index < 1:
        raise _fail(host.name, "etcd_member_index", f"{index!r} is not a positive integer")
    return f"etcd-{cluster}-{index}"


def _renewal(host: Host) -> Renewal:
    expires_in = _data(host, "renewal_expires_in")
    if expires_in is not None:
        text = str(expires_in)
        valid = False
        if text.endswith("%"):
            valid = text[:-1].isdigit() and 0 <= int(text[:-1]) <= 100
        else:
            try:
                valid = parse_duration(text) > 0
            except ValueError:
                valid = False
        if not valid:
            raise _fail(
                host.name, "renewal_expires_in", f"{expires_in!r}: a percentage or duration"
            )
    for key in ("renewal_on_calendar", "renewal_randomized_delay"):
        value = _data(host, key)
        if not isinstance(value, str) or not value or "\n" in value:
            raise _fail(host.name, key, f"{value!r} is not a systemd timer value")
    return Renewal(
        enabled=bool(_data(host, "renewal_enabled")),
        on_calendar=str(_data(host, "renewal_on_calendar")),
        randomized_delay=str(_data(host, "renewal_randomized_delay")),
        expires_in=None if expires_in is None else str(expires_in),
        metrics_dir=None
        if _data(host, "metrics_textfile_dir") is None
        else _path(host, "metrics_textfile_dir"),
    )


def _extra_sans(host: Host) -> tuple[str, ...]:
    sans = _data(host, "cert_extra_sans") or []
    if not isinstance(sans, list | tuple):
        raise _fail(host.name, "cert_extra_sans", "must be a list of DNS names or IPs")
    for san in sans:
        if not (isinstance(san, str) and (is_dns_name(san) or is_ip(san))):
            raise _fail(host.name, "cert_extra_sans", f"{san!r} is not a DNS name or IP")
    return tuple(sans)


def settings_for(host: Host, inventory: Inventory) -> Settings:
    """Validate one host's data; raises SettingsError naming the setting and the host."""
    managers = [h.name for h in inventory.get_group("etcd_cert_managers", [])]
    if not managers:
        raise SettingsError(
            "no primary cert-manager: the inventory needs a group `etcd_cert_managers` "
            "whose first host runs step-ca"
        )
    active = _data(host, "ca_active")
    if active is not None:
        if active not in managers:
            raise _fail(host.name, "ca_active", f"{active!r} is no host of etcd_cert_managers")
        managers = [active, *(m for m in managers if m != active)]
    groups = tuple(g for g in host.groups if g in GROUPS)
    if not groups:
        raise _fail(host.name, "groups", f"the host is in none of the groups {GROUPS}")
    port = _data(host, "step_ca_port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise _fail(host.name, "step_ca_port", f"{port!r} is not a TCP port")
    dns_names = _data(host, "step_ca_dns_names") or []
    for name in dns_names:  # type: ignore[attr-defined]
        if not (isinstance(name, str) and (is_dns_name(name) or is_ip(name))):
            raise _fail(host.name, "step_ca_dns_names", f"{name!r} is not a DNS name or IP")
    db_type = _data(host, "step_ca_db_type")
    if db_type not in DB_TYPES:
        raise _fail(host.name, "step_ca_db_type", f"{db_type!r} is not one of {DB_TYPES}")
    cluster = _data(host, "etcd_cluster_name")
    if not isinstance(cluster, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", cluster):
        raise _fail(host.name, "etcd_cluster_name", f"{cluster!r}: lower-case letters, digits, -")
    addresses = _addresses(host)
    if "etcd" in groups and not addresses:
        raise _fail(
            host.name,
            "node_addresses",
            "an etcd member needs the IP address it listens on (its SSH hostname is no IP)",
        )
    return Settings(
        host=host.name,
        groups=groups,
        cluster=cluster,
        primary=managers[0],
        backups=tuple(managers[1:]),
        step=_artifact(host, "step", STEP_CHECKSUMS),
        step_ca=_artifact(host, "step-ca", STEP_CA_CHECKSUMS),
        bin_dir=str(_data(host, "bin_dir")),
        ca_name=str(_data(host, "step_ca_name")),
        ca_url=_ca_url(host, managers[0], port),
        ca_port=port,
        ca_dns_names=tuple(dns_names),  # type: ignore[arg-type]
        ca_provisioner=str(_data(host, "step_ca_provisioner")),
        ca_db_type=str(db_type),
        ca_path=str(_data(host, "step_ca_path")),
        durations=_durations(host),
        intermediate_duration=_duration(host, "step_ca_intermediate_duration"),
        addresses=addresses,
        node_name=_node_name(host, groups, cluster),
        etcd_user=_word(host, "etcd_user"),
        ssl_dir=_path(host, "ssl_dir"),
        step_path=_path(host, "step_path"),
        extra_sans=_extra_sans(host),
        key_type=_key_type(host),
        renewal=_renewal(host),
        etcd=_etcd(host),
        cfssl=_cfssl(host),
    )


TLS_VERSIONS = ("TLS1.2", "TLS1.3")


def _port(host: Host, key: str) -> int:
    value = _data(host, key)
    if not isinstance(value, int) or not 0 < value < 65536:
        raise _fail(host.name, key, f"{value!r} is not a TCP port")
    return value


def _etcd(host: Host) -> Etcd:
    install_from = _data(host, "etcd_install_from")
    if install_from not in ("archive", "package"):
        raise _fail(host.name, "etcd_install_from", f"{install_from!r}: archive or package")
    tls = _data(host, "etcd_tls_min_version")
    if tls not in TLS_VERSIONS:
        raise _fail(host.name, "etcd_tls_min_version", f"{tls!r} is not one of {TLS_VERSIONS}")
    suites = _data(host, "etcd_cipher_suites") or []
    if not isinstance(suites, list | tuple) or not all(
        isinstance(x, str) and re.match(r"^TLS_[A-Z0-9_]+$", x) for x in suites
    ):
        raise _fail(host.name, "etcd_cipher_suites", "must be a list of Go TLS suite names")
    return Etcd(
        artifact=_artifact(host, "etcd", ETCD_CHECKSUMS),
        install_from=str(install_from),
        bin_dir="/usr/bin" if install_from == "package" else str(_data(host, "bin_dir")),
        client_port=_port(host, "etcd_client_port"),
        peer_port=_port(host, "etcd_peer_port"),
        data_root=_path(host, "etcd_data_root"),
        config_dir=_path(host, "etcd_config_dir"),
        tls_min_version=str(tls),
        cipher_suites=tuple(suites),
        compaction_retention=_duration(host, "etcd_compaction_retention"),
        defrag_min_free_bytes=_bytes(host, "etcd_defrag_min_free_bytes"),
        snapshot_dir=_path(host, "etcd_snapshot_dir"),
        snapshot_local_dir=str(_data(host, "etcd_snapshot_local_dir")),
    )


def _cfssl(host: Host) -> Cfssl:
    values = {}
    for key in ("cfssl_peer_ca", "cfssl_client_ca", "cfssl_cert_name", "cfssl_key_name"):
        value = _data(host, key)
        if not isinstance(value, str) or not value or "/" in value:
            raise _fail(host.name, key, f"{value!r} is not a file name")
        values[key] = value
    for key in ("cfssl_cert_name", "cfssl_key_name"):
        try:
            values[key].format(name="n", kind="k")
        except (KeyError, IndexError, ValueError):
            raise _fail(host.name, key, "use only {name} and {kind}") from None
    return Cfssl(*values.values())


def _duration(host: Host, key: str) -> str:
    value = _data(host, key)
    try:
        parse_duration(value)
    except ValueError as error:
        raise _fail(host.name, key, str(error)) from None
    return str(value)


def time_setting(key: str) -> float:
    """A day-2 deploy's point in time (`renew_before`, `rotate_before`): an ISO 8601 time
    with a time zone, as seconds since the epoch. Read before any change."""
    text = host.data.get(key)
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(
            f"{key}: {text!r} is no ISO 8601 time such as 2026-11-28T06:00:00Z"
        ) from None
    if when.tzinfo is None:
        raise SettingsError(f"{key}: {text!r} needs a time zone (Z or +01:00)")
    return when.timestamp()


def _bytes(host: Host, key: str) -> int:
    value = _data(host, key)
    if not isinstance(value, int) or value < 0:
        raise _fail(host.name, key, f"{value!r} is not a number of bytes")
    return value


def _word(host: Host, key: str) -> str:
    value = _data(host, key)
    if not isinstance(value, str) or not re.match(r"^[a-z_][a-z0-9_-]*$", value):
        raise _fail(host.name, key, f"{value!r} is not a user name")
    return value


def _path(host: Host, key: str) -> str:
    value = _data(host, key)
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        raise _fail(host.name, key, f"{value!r} is not an absolute path")
    return value.rstrip("/")


def _key_type(host: Host) -> str:
    value = _data(host, "cert_key_type")
    if value not in KEY_TYPES:
        raise _fail(host.name, "cert_key_type", f"{value!r} is not one of {tuple(KEY_TYPES)}")
    return str(value)


def validate_inventory(inventory: Inventory) -> dict[str, Settings]:
    """Every host's settings; the first bad one stops the run. Member names are unique."""
    settings = {h.name: settings_for(h, inventory) for h in inventory}
    seen: dict[str, str] = {}
    for name, item in settings.items():
        if not item.needs_certificates:
            continue
        other = seen.setdefault(item.node_name, name)
        if other != name:
            raise _fail(
                name,
                "etcd_member_index",
                f"{item.node_name} is also the name of {other}: names must be unique",
            )
    return settings


_validated: dict[int, dict[str, Settings]] = {}


def load_settings() -> Settings:
    """The current host's settings, after checking every host of the inventory once a run."""
    if id(state) not in _validated:
        _validated.clear()
        _validated[id(state)] = validate_inventory(state.inventory)
    return _validated[id(state)][host.name]


def all_settings() -> list[Settings]:
    """Every host's settings (validated once a run), in inventory order."""
    load_settings()
    return list(_validated[id(state)].values())


def ca_dns_names(settings: Settings) -> list[str]:
    """Names and addresses the CA's TLS certificate covers, so any cert-manager can take over."""
    inventory = state.inventory
    names = [urlsplit(settings.ca_url).hostname or ""]
    for name in (settings.primary, *settings.backups):
        names.append(name)
        names.extend(validate_inventory_host(inventory, name).addresses)
    names.extend(settings.ca_dns_names)
    names.extend(["localhost", "127.0.0.1"])
    return list(dict.fromkeys(n for n in names if n))


def validate_inventory_host(inventory: Inventory, name: str) -> Settings:
    return (
        _validated[id(state)][name]
        if id(state) in _validated
        else settings_for(inventory.get_host(name), inventory)
    )
