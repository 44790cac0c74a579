"""What each operation is given, built from a host's validated settings.

Operations take plain values (paths, names, small frozen dataclasses), never the settings:
this module is the one place that reads settings on their behalf.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pyinfra import host

from etcd_step_pki.deploys.settings import Settings, SettingsError, cluster_names
from etcd_step_pki.operations import galera
from etcd_step_pki.operations.ca import UNIT as STEP_CA_UNIT
from etcd_step_pki.operations.ca import database_source
from etcd_step_pki.operations.ca_policy import Policy
from etcd_step_pki.operations.certificates import Issuance, StepNode
from etcd_step_pki.operations.etcd.configuration import MemberOptions, TLSFiles
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.renewal import RenewalSchedule
from etcd_step_pki.operations.revocation import CRL_UNIT, Holder
from etcd_step_pki.operations.roots import PinnedRoot
from etcd_step_pki.operations.tokens import Authority


def authority(settings: Settings) -> Authority:
    """The active CA: its URL, and the cert-manager that mints tokens."""
    return Authority(
        url=settings.ca_url,
        cert_manager=settings.primary,
        path=settings.ca_path,
        provisioner=settings.ca_provisioner,
        bin_dir=settings.bin_dir,
        pin=pinned_root(settings),
        policy=Policy.of(settings.ca_provisioner, settings.ca_profiles, cluster_names()),
        # Active-active: any cert-manager mints and answers when the first cannot be reached.
        others=settings.backups if settings.active_active else (),
        urls=settings.every_ca_url,
    )


def pinned_root(settings: Settings) -> PinnedRoot:
    """The root hosts may trust: the one set, else the one recorded on the controller (none
    yet: only the run that initialises the CA records it; ca_accept_new_root=true: the run
    records the root it finds)."""
    pin = settings.root_pin
    if pin.fingerprint:
        return PinnedRoot(pin.fingerprint)
    if settings.run.ca_accept_new_root:
        return PinnedRoot(None, pin.record, accept_found=True)
    record = Path(pin.record)
    found = record.read_text().split() if record.is_file() else []
    return PinnedRoot(found[0] if found else None, pin.record, f"recorded in {pin.record}")


def step_node(settings: Settings) -> StepNode:
    return StepNode(
        bin_dir=settings.bin_dir,
        step_path=settings.step_path,
        ssl_dir=settings.ssl_dir,
        owner=settings.etcd_user,
    )


def issuance(settings: Settings) -> Issuance:
    return Issuance(
        duration=settings.durations.default,
        key_type=settings.key_type,
        expires_in=settings.renewal.expires_in,
    )


def schedule(settings: Settings) -> RenewalSchedule:
    return RenewalSchedule(
        on_calendar=settings.renewal.on_calendar,
        randomized_delay=settings.renewal.randomized_delay,
        expires_in=settings.renewal.expires_in,
        metrics_dir=settings.renewal.metrics_dir,
    )


def etcdctl(settings: Settings, cert: str | None = None, key: str | None = None,
            ca: str | None = None) -> Etcdctl:  # fmt: skip
    """etcdctl on a host against its own member, with its client certificate (or others')."""
    own = settings.client_certificate
    return Etcdctl(
        binary=settings.etcd.etcdctl,
        cacert=ca or settings.root_file,
        cert=cert or own.crt,
        key=key or own.key,
        endpoint=f"https://127.0.0.1:{settings.etcd.client_port}",
    )


def member(settings: Settings) -> Member:
    return Member(
        host=settings.host,
        name=settings.node_name,
        address=settings.address,
        data_dir=settings.data_dir,
        config_path=settings.member_file("env"),
        unit=settings.unit,
        etcdctl=etcdctl(settings),
        peer_port=settings.etcd.peer_port,
        client_port=settings.etcd.client_port,
    )


def members(everyone: Iterable[Settings]) -> tuple[Member, ...]:
    """Every member of the inventory, in inventory order."""
    return tuple(member(s) for s in everyone if s.is_member)


def standard_tls(settings: Settings, *, peers_checked: bool = True) -> TLSFiles:
    """This tool's files: step-ca certificates; trust in peer-ca.crt and client-ca.crt; the
    peer port open to this cluster's peer certificates only, the client port to its client
    certificates only (unless `peers_checked` is False: while some hosts still hold
    certificates of another CA; or `etcd_http_gateway`, which etcd cannot serve beside it)."""
    files = {c.kind: c for c in settings.certificates}
    peer, client = files["peer"].profile, files["client"].profile
    return TLSFiles(
        files["peer"].crt,
        files["peer"].key,
        files["server"].crt,
        files["server"].key,
        f"{settings.ssl_dir}/peer-ca.crt",
        f"{settings.ssl_dir}/client-ca.crt",
        peer.common_name if peers_checked and peer else None,
        settings.crl_file if settings.is_member else None,
        None
        if settings.etcd.http_gateway or not (peers_checked and client)
        else client.client_mark,
    )


def member_options(settings: Settings, tls: TLSFiles | None = None) -> MemberOptions:
    return MemberOptions(
        cluster_token=f"etcd-{settings.cluster}",
        tls=tls or standard_tls(settings),
        tls_min_version=settings.etcd.tls_min_version,
        cipher_suites=settings.etcd.cipher_suites,
        compaction_retention=settings.etcd.compaction_retention,
        feature_gates=settings.etcd.feature_gates,
        metrics_port=settings.etcd.metrics_port,
    )


def managed_units(settings: Settings) -> list[str]:
    """Every unit of the host the deploys manage: what a run's first read of units takes at
    once (facts/memo.py), so the reads after it need no round trip while nothing changes."""
    units = [f"{item.unit}.{kind}" for item in settings.host_certificates
             for kind in ("service", "timer")]  # fmt: skip
    if settings.member_of_any:
        units += [f"{CRL_UNIT}.service", f"{CRL_UNIT}.timer"]
        units += [f"{name}.service" for _, name in settings.memberships]
    if settings.is_cert_manager:
        units.append(STEP_CA_UNIT)
    return units


# Names every host's certificates carry: never a sign of whose a certificate is.
_SHARED = frozenset({"localhost", "127.0.0.1", "::1"})


def holder(target: Settings, everyone: Iterable[Settings], *, cluster: bool = False) -> Holder:
    """Whose certificates, from the inventory alone: the subjects of the target's
    certificates and the names and addresses in them that no other host has. `cluster`:
    only those of its membership of the current cluster (a peer certificate's subject is
    the whole cluster's: it counts only with one of the target's names in it)."""
    others = [s for s in everyone if s.host != target.host]
    taken = {value for s in others for value in s.sans} | {
        item.common_name for s in others for item in s.host_certificates
    }
    items = target.certificates if cluster else target.host_certificates
    own_sans = frozenset(target.sans) - taken - _SHARED
    subjects = frozenset(item.common_name for item in items)
    return Holder(
        subjects=subjects - taken,
        sans=own_sans,
        san_subjects=subjects if cluster else None,
    )


def ca_database(settings: Settings) -> str:
    """step-ca's database on the cert-managers, whose records say what the CA issued: its
    file, or with ca_ha=active-active the Galera database's name."""
    if settings.active_active:
        return galera.DATABASE
    return database_source(settings.ca_path, settings.ca_db_type)


def key_file(setting: str, name: str | None, kind: str) -> str:
    """The armored GnuPG key in the controller file `name` (the value of `setting`)."""
    path = Path(str(name)) if name else None
    if path is None or not path.is_file():
        raise SettingsError(
            f"invalid setting `{setting}` for host {host.name}: {name!r} is no file on the "
            f"controller holding the {kind} key"
        )
    text = path.read_text()
    if f"BEGIN PGP {kind.upper()} KEY BLOCK" not in text:
        raise SettingsError(f"invalid setting `{setting}`: {path} holds no armored {kind} key")
    return text
