"""The kinds of values settings take, and the one way a setting is declared.

Each kind is a type with its constraint (pydantic's where it has one, a domain check here
where it has none: Go durations, systemd timer values, cipher suites, checksum tables), and
refuses a value with `<value> is not <what>`. `setting()` and `per_run()` declare a field
with its default and its one line of documentation, from which DEFAULTS and the README's
reference are derived.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, PlainValidator
from pydantic.fields import FieldInfo

from etcd_step_pki.operations.durations import parse_duration
from etcd_step_pki.operations.etcd.tls import cipher_suite_problem
from etcd_step_pki.templates import control_character

ARCHITECTURES = ("amd64", "arm64")

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})*\.?$")


class Invalid(ValueError):
    """A problem found by a check that reads several settings, naming the one to change."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(problem)
        self.setting = setting


# An address as digits, dots and colons, with an IPv6 scope id of a network interface's name.
_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?")


def is_ip(value: str) -> bool:
    if not _IP_TEXT.fullmatch(value):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_dns_name(value: str) -> bool:
    return bool(_DNS_NAME.fullmatch(value)) and not is_ip(value)


def strings_in(value: object, where: str) -> Iterator[tuple[str, str]]:
    """`(where, text)` for every string in a setting's value, keys of mappings included."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key, where)
            yield from strings_in(item, f"{where}.{key}")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item, where)


def refuse_control_characters(data: object) -> object:
    """A model's input with no control character in any string of any setting: raises
    Invalid naming the setting. Every kind of value is checked again by its own pattern;
    this holds for the kinds that have none (names, keys, free text)."""
    if isinstance(data, dict):
        for name, value in data.items():
            for where, text in strings_in(value, str(name)):
                found = control_character(text)
                if found is not None:
                    raise Invalid(
                        str(name),
                        f"{text!r} holds the control character {found!r}"
                        + (f" (in {where})" if where != name else "")
                        + ": values reach unit files, environment files and commands",
                    )
    return data


def parse_time(text: object) -> float:
    """Seconds since the epoch of an ISO 8601 time with a time zone (`renew_before`,
    `rotate_before`); raises ValueError saying what is wrong."""
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is no ISO 8601 time such as 2026-11-28T06:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} needs a time zone (Z or +01:00)")
    return when.timestamp()


def _check(test: Callable[[Any], object], what: str) -> AfterValidator:
    """Refuse a value (already of the right type) for which `test` is false: `<value> is not
    <what>`."""

    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _between(low: int, high: int | None, what: str) -> AfterValidator:
    return _check(lambda value: value >= low and (high is None or value <= high), what)


def _matches(pattern: str) -> Callable[[str], object]:
    return re.compile(pattern).fullmatch


def _cipher_suite(value: str) -> str:
    problem = cipher_suite_problem(value)
    if problem:
        raise ValueError(problem)
    return value


_PATH = re.compile(r"^/[A-Za-z0-9._@+=:,/-]*$")


def _one_line(value: str) -> bool:
    return bool(value) and control_character(value) is None


def _absolute(value: str) -> bool:
    """An absolute path of the characters paths are made of here: it reaches shell commands
    and unit files, where spaces and shell syntax would change its meaning."""
    return bool(_PATH.fullmatch(value))


def _file_name(value: str) -> bool:
    """A file name of the characters paths are made of here (see `_absolute`); `{` and `}`
    for the cfssl name patterns."""
    return bool(re.fullmatch(r"[A-Za-z0-9._@+=:,{}-]+", value)) and value not in (".", "..")


def _name_pattern(value: str) -> bool:
    """A cfssl file name pattern: only `{name}` and `{kind}` are filled in."""
    try:
        value.format(name="n", kind="k")
    except (KeyError, IndexError, ValueError):
        return False
    return True


def _is_duration(value: str) -> bool:
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def _expires_in(value: str) -> bool:
    """step's `--expires-in`: a share of the lifetime used (`80%`) or a positive duration."""
    if value.endswith("%"):
        return value[:-1].isdigit() and int(value[:-1]) <= 100
    return _is_duration(value) and parse_duration(value) > 0


# The characters of a URL here: no white space, quote, backslash, `%` (a systemd specifier,
# and escapes are not needed in these URLs) or `$`.
_URL_TEXT = re.compile(r"[A-Za-z0-9._~:/?#\[\]@!&()*+,;=-]+")


def _url(schemes: tuple[str, ...]) -> Callable[[str], bool]:
    def test(value: str) -> bool:
        if not _URL_TEXT.fullmatch(value):
            return False
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  (raises on a port that is no number)
        except ValueError:
            return False
        host = parts.hostname or ""
        return parts.scheme in schemes and (is_dns_name(host) or is_ip(host))

    return test


def _object_prefix(value: str) -> bool:
    """An S3 key prefix: segments of safe characters, no empty, `.` or `..` segment."""
    return all(
        re.fullmatch(r"[A-Za-z0-9!_.*'()-]+", part) and part not in (".", "..")
        for part in value.split("/")
    )


def _iso_time(value: str) -> str:
    parse_time(value)
    return value


def _listed(value: object) -> object:
    """Lists and tuples alike (inventories write either), kept as a tuple; None (unset) is
    empty."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ValueError(f"{value!r} is not a list")


def _one_or_listed(value: object) -> object:
    """`node_addresses`: one address, a list of them, or None (the SSH hostname's)."""
    if value is None:
        return None
    return (value,) if isinstance(value, str) else _listed(value)


# What a host may set for one of its clusters (`etcd_clusters`): how that cluster's member
# listens and is kept; everything else (binaries, accounts, paths, the CA) is the host's.
CLUSTER_SETTINGS = (
    "etcd_client_port",
    "etcd_peer_port",
    "etcd_metrics_port",
    "etcd_member_index",
    "etcd_compaction_retention",
    "etcd_defrag_min_free_bytes",
    "etcd_tls_min_version",
    "etcd_cipher_suites",
    "etcd_http_gateway",
)


def _clusters(value: object) -> dict[str, dict[str, Any]] | None:
    """`etcd_clusters`: None (one cluster, `etcd_cluster_name`), or the host's clusters in
    order, each mapped to its own values of CLUSTER_SETTINGS (None or {}: the host's)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        value = dict.fromkeys(value)
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{value!r} is not a mapping of cluster names to their settings")
    clusters: dict[str, dict[str, Any]] = {}
    for name, own in value.items():
        if not (isinstance(name, str) and re.fullmatch(r"[a-z0-9][a-z0-9-]*", name)):
            raise ValueError(f"{name!r} is not a cluster name (lower-case letters, digits, -)")
        own = {} if own is None else own
        if not isinstance(own, dict):
            raise ValueError(f"{name}: {own!r} is not a mapping of settings")
        for key in own:
            if key not in CLUSTER_SETTINGS:
                raise ValueError(
                    f"{name}: {key!r} cannot differ between clusters (one of "
                    f"{', '.join(CLUSTER_SETTINGS)})"
                )
        clusters[name] = dict(own)
    return clusters


def _kinds(value: object) -> object:
    """`renew_kinds`: a list, or a comma-separated string as `--data renew_kinds=peer,server`."""
    if isinstance(value, str):
        return tuple(kind.strip() for kind in value.split(",") if kind.strip())
    return value if value is None else _listed(value)


def _arch_sums(value: object, what: str = "") -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{what}must map an architecture to a SHA-256")
    for arch, digest in value.items():
        if arch not in ARCHITECTURES:
            raise ValueError(f"{what}unknown architecture {arch!r}")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ValueError(f"{what}{arch}: {digest!r} is not a SHA-256")
    return dict(value)


def _by_version(table: object) -> bool:
    """Whether a checksum table is `{version: {arch: sha256}}` rather than `{arch: sha256}`."""
    return isinstance(table, dict) and any(
        isinstance(k, str) and _VERSION.fullmatch(k) for k in table
    )


def checksums_for(table: dict[str, Any], version: str) -> dict[str, str]:
    """The `{arch: sha256}` of `version` in a validated checksum table (empty: none pinned)."""
    return dict(table.get(version, {})) if _by_version(table) else dict(table)


def _checksum_table(value: object) -> dict[str, Any] | None:
    """`{arch: sha256}` for the version in use, `{version: {arch: sha256}}` to pin several
    versions, or None: the pinned upstream table."""
    if value is None:
        return None
    if not isinstance(value, dict) or not _by_version(value):
        return _arch_sums(value)
    for version in value:
        if not (isinstance(version, str) and _VERSION.fullmatch(version)):
            raise ValueError(f"{version!r} is not a version like 0.30.2")
    return {version: _arch_sums(sums, f"{version}: ") for version, sums in value.items()}


Line = Annotated[str, _check(_one_line, "a one-line value")]
# A SHA-256 in hex; `step certificate fingerprint` prints lower case, some tools colons.
Fingerprint = Annotated[
    str,
    BeforeValidator(lambda v: v.strip().lower().replace(":", "") if isinstance(v, str) else v),
    _check(_matches(r"[0-9a-f]{64}"), "a SHA-256 fingerprint (64 hex digits)"),
]
Port = Annotated[int, _between(1, 65535, "a TCP port")]
Version = Annotated[str, _check(_VERSION.fullmatch, "a version like 0.30.2")]
Duration = Annotated[str, _check(_is_duration, "a duration such as 17520h or 90m")]
# Alert thresholds: numbers (an int is one too), finite and above 0.
Positive = Annotated[float, _check(lambda v: 0 < v < math.inf, "a number above 0")]
Percent = Annotated[float, _check(lambda v: 0 < v <= 100, "a percentage (above 0, at most 100)")]
Ratio = Annotated[float, _check(lambda v: 0 < v < 1, "a ratio between 0 and 1")]
Days = Annotated[int, _between(1, None, "a number of days (1 or more)")]
AbsolutePath = Annotated[
    str,
    _check(_absolute, "an absolute path"),
    AfterValidator(lambda value: value.rstrip("/") or "/"),
]
FileName = Annotated[str, _check(_file_name, "a file name")]
NamePattern = Annotated[FileName, _check(_name_pattern, "a file name using only {name}, {kind}")]
# What systemd's calendar and time span syntax uses (weekdays, dates, times, ranges, lists,
# repetitions, time zones): no quote, no shell or unit-file syntax.
TimerValue = Annotated[
    str, _check(_matches(r"[A-Za-z0-9 :*,./~+_-]+"), "a systemd timer value (calendar or span)")
]
IpAddress = Annotated[str, _check(is_ip, "an IP address")]
DnsNameOrIp = Annotated[str, _check(lambda v: is_dns_name(v) or is_ip(v), "a DNS name or IP")]
DnsNames = Annotated[tuple[DnsNameOrIp, ...], BeforeValidator(_listed)]
HttpUrl = Annotated[str, _check(_url(("http", "https")), "an http(s) URL")]
HttpsUrl = Annotated[
    str, _check(_url(("https",)), "an https:// URL"), AfterValidator(lambda v: v.rstrip("/"))
]
Checksums = Annotated[dict[str, Any] | None, PlainValidator(_checksum_table)]
CipherSuite = Annotated[str, AfterValidator(_cipher_suite)]
ClusterName = Annotated[
    str, _check(_matches(r"^[a-z0-9][a-z0-9-]*$"), "a name of lower-case letters, digits, -")
]
UserName = Annotated[str, _check(_matches(r"^[a-z_][a-z0-9_-]*$"), "a user name")]
IsoTime = Annotated[str, AfterValidator(_iso_time)]
# Slashes around it are dropped: `/ca/backups/` is `ca/backups`.
ObjectPrefix = Annotated[
    str,
    AfterValidator(lambda value: value.strip("/")),
    _check(_object_prefix, "an S3 key prefix such as step-ca/k8s"),
]

ArtifactSource = Literal["upstream", "mirror", "local"]
# bbolt only: revocation reads the CA's records from its bbolt file (facts/bolt.py), and no
# other database's records can be read by these deploys.
DbType = Literal["bbolt"]
CaHa = Literal["standby", "active-active"]
InstallFrom = Literal["archive", "package"]
TlsVersion = Literal["TLS1.2", "TLS1.3"]
KeyType = Literal["EC", "OKP", "RSA"]  # the keys of operations.certificates.KEY_TYPES
CertKind = Literal["peer", "server", "client"]
StopAfter = Literal["bundle", "certs", "final"]
StatusFormat = Literal["text", "json"]
DrillFrom = Literal["replica", "s3"]
BackupEncryption = Literal["gpg", "kms"]


def setting(default: object, doc: str, *, shown: str | None = None) -> Any:
    """A host setting: its default (what DEFAULTS holds), its one line of documentation and,
    when the default is worked out at run time, what the reference says it is (`shown`)."""
    extra: dict[str, Any] = {"shown": shown} if shown else {}
    return Field(default=default, description=doc, json_schema_extra=extra)


def per_run(doc: str, *, shown: str | None = None) -> Any:
    """A per-run setting (`--data`): None when not given, and not among the deploys' data
    defaults."""
    extra: dict[str, Any] = {"per_run": True, **({"shown": shown} if shown else {})}
    return Field(default=None, description=doc, json_schema_extra=extra)


def is_per_run(field: FieldInfo) -> bool:
    """Whether a field was declared with `per_run()`."""
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("per_run"))


def shown_default(field: FieldInfo) -> str:
    """The default as the reference shows it: `shown` if declared, else the value."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and extra.get("shown"):
        return str(extra["shown"])
    if field.default is None:
        return "none"
    return f"`{field.default}`"
