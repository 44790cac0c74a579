"""cfssl -> step-ca, one phase a component (each ends at a shared barrier), resumable.

The phase a host completed is recorded in MARKER; a run picks up after it.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api.operation import OperationMeta
from pyinfra.operations import files

from etcd_step_pki.deploys.components import arguments, component
from etcd_step_pki.deploys.components.binaries import step_binary
from etcd_step_pki.deploys.components.certificates import (
    issue_certificates,
    renewal_units,
    revocation_list,
)
from etcd_step_pki.deploys.settings import Settings, all_settings, load_settings
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.operations.etcd.configuration import TLSFiles, member_configuration
from etcd_step_pki.operations.etcd.member import Etcdctl
from etcd_step_pki.operations.etcd.restarts import cluster_healthy_wait, rolling_restart
from etcd_step_pki.operations.migration import legacy_removed, trust_bundles

MARKER = "/var/lib/etcd-step-pki/cfssl-migration"
PHASES = ("bundle", "certs", "final", "done")


def completed() -> int:
    """How many phases this host has completed."""
    text = (host.get_fact(FileText, path=MARKER) or "").strip()
    return PHASES.index(text) + 1 if text in PHASES else 0


def _record(phase: str) -> None:
    files.directory(name="Migration state directory", path=MARKER.rsplit("/", 1)[0], mode="0700")
    files.put(name=f"Phase {phase} done", src=StringIO(f"{phase}\n"), dest=MARKER, mode="0600")


def _legacy_name(settings: Settings, kind: str, key: bool = False) -> str:
    pattern = settings.cfssl.key_name if key else settings.cfssl.cert_name
    return f"{settings.ssl_dir}/{pattern.format(name=settings.node_name, kind=kind)}"


def legacy_tls(settings: Settings) -> TLSFiles:
    """The cfssl certificates, with trust in the (transitional) bundles."""
    return TLSFiles(
        _legacy_name(settings, "peer"),
        _legacy_name(settings, "peer", key=True),
        _legacy_name(settings, "server"),
        _legacy_name(settings, "server", key=True),
        f"{settings.ssl_dir}/peer-ca.crt",
        f"{settings.ssl_dir}/client-ca.crt",
    )


def _client(settings: Settings, legacy: bool) -> Etcdctl:
    """etcdctl while members may still present cfssl certificates: the bundle as CA, the
    old client certificate until the new one is there."""
    bundle = f"{settings.ssl_dir}/client-ca.crt"
    if not legacy:
        return arguments.etcdctl(settings, ca=bundle)
    return arguments.etcdctl(
        settings,
        cert=_legacy_name(settings, "client"),
        key=_legacy_name(settings, "client", key=True),
        ca=bundle,
    )


def legacy_files(settings: Settings) -> list[str]:
    paths = [
        f"{settings.ssl_dir}/{settings.cfssl.peer_ca}",
        f"{settings.ssl_dir}/{settings.cfssl.client_ca}",
    ]
    for item in settings.certificates:
        paths += [_legacy_name(settings, item.kind), _legacy_name(settings, item.kind, key=True)]
    return paths


def _restart_files(settings: Settings) -> list[str]:
    """What a member read when it started and a phase changes: trust files, configuration."""
    ssl = settings.ssl_dir
    return [f"{ssl}/peer-ca.crt", f"{ssl}/client-ca.crt", settings.member_file("env")]


def _member_config(settings: Settings, tls: TLSFiles) -> OperationMeta:
    return member_configuration(
        name="etcd member configuration",
        member=arguments.member(settings),
        peers=arguments.members(all_settings()),
        options=arguments.member_options(settings, tls),
    )


@component("cfssl migration 1/4: trust both CAs")
def trust_phase() -> None:
    """Every host trusts the old CAs and the new root; members restart one at a time."""
    settings = load_settings()
    if not settings.needs_certificates or completed() >= 1:
        return
    ssl = settings.ssl_dir
    trust = trust_bundles(
        name="Transitional trust bundles",
        ssl_dir=ssl,
        authority=arguments.authority(settings),
        old_roots={
            f"{ssl}/peer-ca.crt": f"{ssl}/{settings.cfssl.peer_ca}",
            f"{ssl}/client-ca.crt": f"{ssl}/{settings.cfssl.client_ca}",
        },
    )
    if settings.is_member:
        config = _member_config(settings, legacy_tls(settings))
        rolling_restart(
            name="Rolling restart onto the bundles",
            member=arguments.member(settings),
            peers=arguments.members(all_settings()),
            etcdctl=_client(settings, legacy=True),
            restart_after=[trust, config],
            files=_restart_files(settings),
        )
    _record("bundle")


@component("cfssl migration 2/4: step-ca certificates")
def certificates_phase() -> None:
    """Keys and certificates from step-ca on every host; members switch one at a time."""
    settings = load_settings()
    if not settings.needs_certificates or completed() >= 2:
        return
    step_binary(settings)
    issue_certificates(settings, certificates=settings.certificates, trust_links=False)
    renewal_units(settings, settings.certificates)
    if settings.is_member:
        revocation_list(settings)
        # Members still on cfssl certificates connect until every one has switched: the
        # peer port takes this cluster's peer certificates only from the next phase on.
        tls = arguments.standard_tls(settings, peers_checked=False)
        config = _member_config(settings, tls)
        rolling_restart(
            name="Rolling restart onto the new certificates",
            member=arguments.member(settings),
            peers=arguments.members(all_settings()),
            etcdctl=_client(settings, legacy=False),
            restart_after=[config],
            files=_restart_files(settings),
        )
    _record("certs")


@component("cfssl migration 3/4: the new root only")
def root_only_phase() -> None:
    """The old CAs leave the trust files, the peer port takes this cluster's peer
    certificates only; members restart one at a time."""
    settings = load_settings()
    if not settings.needs_certificates or completed() >= 3:
        return
    trust = trust_bundles(
        name="Trust the new root only",
        ssl_dir=settings.ssl_dir,
        authority=arguments.authority(settings),
        old_roots=None,
    )
    if settings.is_member:
        config = _member_config(settings, arguments.standard_tls(settings))
        rolling_restart(
            name="Rolling restart onto the new root",
            member=arguments.member(settings),
            peers=arguments.members(all_settings()),
            restart_after=[trust, config],
            files=_restart_files(settings),
        )
    _record("final")


@component("cfssl migration 4/4: old files removed")
def cleanup_phase() -> None:
    """Once the cluster is healthy on the new certificates, the old *.pem go."""
    settings = load_settings()
    if not settings.needs_certificates or completed() >= 4:
        return
    if settings.is_member:
        cluster_healthy_wait(name="etcd cluster is healthy", etcdctl=arguments.etcdctl(settings))
    legacy_removed(name="Old cfssl files", paths=legacy_files(settings))
    _record("done")
