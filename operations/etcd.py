"""etcd members: configuration, joining a cluster, rolling restarts, health.

A member's `initial-*` settings matter only on its first start, so they are left out of
change detection once the member holds data: adding a member later does not rewrite (and
restart) the others.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from io import StringIO

from pyinfra import host, logger
from pyinfra.api import FileUploadCommand, FunctionCommand, OperationError, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.api.state import State

from deploys.settings import Settings, validate_inventory_host
from facts.etcd import (
    EtcdCluster,
    EtcdCompacted,
    EtcdMember,
    cluster_healthy,
    etcdctl,
    member_status,
)
from facts.paths import ExistingPaths
from operations.shell import script
from templates import render


@dataclass(frozen=True)
class Peer:
    """A member as the others see it: inventory host, member name, peer URL."""

    host: str
    name: str
    peer_url: str


def peers_of(all_settings: Sequence[Settings]) -> tuple[Peer, ...]:
    return tuple(
        Peer(s.host, s.node_name, f"https://{s.address}:{s.etcd.peer_port}")
        for s in all_settings
        if s.is_member
    )


@dataclass(frozen=True)
class ClientFiles:
    """The certificate, key and CA file etcdctl uses (other than this tool's during a
    migration, while the members still present their old certificates)."""

    cert: str
    key: str
    ca: str


def etcdctl_for(settings: Settings, client: ClientFiles | None = None) -> list[str]:
    """etcdctl on a member, against its own endpoint, with its client certificate."""
    own = settings.client_certificate
    files = client or ClientFiles(own.crt, own.key, settings.root_file)
    return etcdctl(
        settings.etcd.etcdctl,
        files.ca,
        files.cert,
        files.key,
        f"https://127.0.0.1:{settings.etcd.client_port}",
    )


@dataclass(frozen=True)
class TLSFiles:
    """The certificate, key and trust files a member's configuration names."""

    peer_cert: str
    peer_key: str
    server_cert: str
    server_key: str
    peer_trust: str
    client_trust: str


def standard_tls(settings: Settings) -> TLSFiles:
    """This tool's files: step-ca certificates; trust in peer-ca.crt and client-ca.crt."""
    files = {c.kind: c for c in settings.certificates}
    return TLSFiles(
        files["peer"].crt,
        files["peer"].key,
        files["server"].crt,
        files["server"].key,
        f"{settings.ssl_dir}/peer-ca.crt",
        f"{settings.ssl_dir}/client-ca.crt",
    )


def member_config(
    settings: Settings,
    initial_cluster: str,
    initial_state: str,
    tls: TLSFiles | None = None,
) -> str:
    return render(
        "etcd.conf.yml.j2",
        name=settings.node_name,
        data_dir=settings.data_dir,
        address=settings.address,
        peer_port=settings.etcd.peer_port,
        client_port=settings.etcd.client_port,
        tls=tls or standard_tls(settings),
        tls_min_version=settings.etcd.tls_min_version,
        cipher_suites=settings.etcd.cipher_suites,
        initial_cluster=initial_cluster,
        initial_cluster_state=initial_state,
        cluster_token=f"etcd-{settings.cluster}",
        compaction_retention=settings.etcd.compaction_retention,
    )


def _steady(config: str) -> list[str]:
    """The lines that matter after the first start: all but `initial-*`."""
    return [line for line in config.splitlines() if not line.startswith("initial-")]


def _initial_lines(config: str) -> list[str]:
    return [line for line in config.splitlines() if line.startswith("initial-")]


def _keep_initial(wanted: str, current: str) -> str:
    """`wanted` with the `initial-*` lines the member was bootstrapped with."""
    kept = iter(_initial_lines(current))
    lines = [
        next(kept, line) if line.startswith("initial-") else line for line in wanted.splitlines()
    ]
    return "\n".join(lines) + "\n"


def _other_member(state: State, me: str, peers: Sequence[Peer]) -> tuple[Host, dict] | None:
    """The first other member whose etcd answers, with what it sees of the cluster."""
    for peer in peers:
        if peer.host == me:
            continue
        other = state.inventory.get_host(peer.host)
        if not other.connected:
            other.connect(reason="to reach the etcd cluster", show_errors=False)
        if not other.connected:
            continue
        settings = validate_inventory_host(state.inventory, peer.host)
        local = other.get_fact(
            EtcdMember, config=settings.member_file("conf.yml"), data_dir=settings.data_dir,
            unit=settings.unit,
        )  # fmt: skip
        if not (local["bootstrapped"] and local["active"]):
            continue  # not running yet: asking its etcd would only time out
        view = other.get_fact(EtcdCluster, etcdctl_args=etcdctl_for(settings))
        if view["members"]:
            return other, view
    return None


@operation()
def member(
    *,
    settings: Settings,
    peers: Sequence[Peer],
    config_path: str,
    tls: TLSFiles | None = None,
) -> Generator:
    """
    Keep the member's configuration; on its first start, join the cluster it belongs to.

    + settings: this member's validated settings
    + peers: every member of the inventory
    + config_path: where the configuration file goes
    + tls: the certificate and trust files to name (default: this tool's)

    Before its first start a member looks for a running cluster through the other members:
    none answers, so the cluster is new and all members start together; one answers, so
    this member is added with `etcdctl member add` (refused while the cluster is unhealthy)
    and starts with `initial-cluster-state: existing`.
    """
    local = host.get_fact(
        EtcdMember, config=config_path, data_dir=settings.data_dir, unit=settings.unit
    )
    everyone = ",".join(f"{p.name}={p.peer_url}" for p in peers)
    if local["bootstrapped"] and local["config"] is not None:
        wanted = _keep_initial(member_config(settings, everyone, "new", tls), local["config"])
        if _steady(wanted) == _steady(local["config"]):
            host.noop(f"{config_path} is as configured")
            return
        yield FileUploadCommand(StringIO(wanted), config_path)
        return
    if local["bootstrapped"]:
        raise OperationError(
            f"{settings.data_dir} holds a member but {config_path} is missing: restore the "
            "configuration or remove the data directory to join afresh"
        )
    if not host.state.is_executing:
        yield FileUploadCommand(
            StringIO(member_config(settings, everyone, "new", tls)), config_path
        )
        return
    found = _other_member(host.state, settings.host, peers)
    if found is None:
        # Nobody answers: a new cluster, every member starts with the same list.
        yield script("install -d -m 0755 {d}", d=settings.etcd.config_dir)
        yield FileUploadCommand(
            StringIO(member_config(settings, everyone, "new", tls)), config_path
        )
        return
    other, view = found
    if not cluster_healthy(view):
        raise OperationError(
            f"the etcd cluster is unhealthy as {other.name} sees it "
            f"({view['error'] or view['health']}): refusing to add {settings.node_name}"
        )
    me = next(p for p in peers if p.host == settings.host)
    existing = [m for m in view["members"] if m["name"] != me.name and m["name"]]
    initial = ",".join(
        [f"{m['name']}={m['peer_urls'][0]}" for m in existing] + [f"{me.name}={me.peer_url}"]
    )
    yield FunctionCommand(_add_member, (other.name, me, view["members"]), {})
    yield script("install -d -m 0755 {d}", d=settings.etcd.config_dir)
    yield FileUploadCommand(
        StringIO(member_config(settings, initial, "existing", tls)), config_path
    )


def reconfigure(etcdctl: Sequence[str], verb: str, *args: str) -> StringCommand:
    """`etcdctl member <verb> <args>`. etcd refuses to change its membership until every
    member has been connected for a few seconds (e.g. right after a restart): that answer is
    retried for a minute, any other fails."""
    return script(
        "i=0; until out=$({c} member {verb} {args} 2>&1); do i=$((i+1));"
        ' case "$out" in *"unhealthy cluster"*) [ "$i" -lt 60 ] && sleep 1 && continue;;'
        ' esac; echo "$out" >&2; exit 1; done',
        c=list(etcdctl),
        verb=verb,
        args=list(args),
    )


def _add_member(state: State, host: Host, through: str, me: Peer, members: list[dict]) -> bool:
    """Run time: `etcdctl member add` through a healthy member (a stale entry of the same
    name, left by a member whose data was lost, is removed first)."""
    other = state.inventory.get_host(through)
    base = etcdctl_for(validate_inventory_host(state.inventory, through))
    stale = [m for m in members if m["name"] == me.name or me.peer_url in m["peer_urls"]]
    commands = [reconfigure(base, "remove", m["id"]) for m in stale]
    commands.append(reconfigure(base, "add", me.name, f"--peer-urls={me.peer_url}"))
    for command in commands:
        ok, output = other.run_shell_command(command)
        if not ok:
            host.log_styled(
                f"adding {me.name} through {through} failed: {output.stderr}",
                fg="red",
                log_func=logger.error,
            )
            return False
    host.log_styled(f"added {me.name} to the cluster through {through}", log_func=logger.info)
    return True


_WAIT_HEALTHY = (
    "i=0; until {etcdctl} endpoint health --cluster >/dev/null 2>&1; do i=$((i+1));"
    ' if [ "$i" -ge {tries} ]; then echo "etcd cluster not healthy after {timeout}s" >&2;'
    " {etcdctl} endpoint health --cluster >&2; exit 1; fi; sleep 0.5; done"
)


@operation()
def rolling_restart(
    *, settings: Settings, timeout: int = 120, client: ClientFiles | None = None
) -> Generator:
    """
    Restart a running member and wait until the whole cluster is healthy again.

    + settings: this member's validated settings
    + timeout: seconds to wait for health after the restart
    + client: etcdctl's certificate, key and CA file (default: this tool's)

    Run it with `_serial=True` so members restart one at a time; a member that is not
    running is left to the start that follows.
    """
    local = host.get_fact(
        EtcdMember, config=settings.member_file("conf.yml"), data_dir=settings.data_dir,
        unit=settings.unit,
    )  # fmt: skip
    if not local["active"]:
        host.noop(f"{settings.unit} is not running: nothing to restart")
        return
    args = etcdctl_for(settings, client)
    view = host.get_fact(EtcdCluster, etcdctl_args=args)
    own = member_status(view, settings.node_name)
    healthy = {h["endpoint"] for h in view["health"] if h["healthy"]}
    others = [
        m["id"]
        for m in view["members"]
        if m["name"] != settings.node_name and not m["learner"] and set(m["client_urls"]) & healthy
    ]
    if own is not None and own["leader"] == own["id"] and others:
        # Hand leadership over first: no election while this member is down. The leader
        # drops writes while a handover waits for its target to catch up: hand it to the
        # follower that has applied the most.
        applied = {st["id"]: st.get("applied", 0) for st in view["status"]}
        target = max(others, key=lambda member: applied.get(member, 0))
        yield script("{c} move-leader {id} >/dev/null", c=args, id=target)
    yield script("systemctl restart {unit}", unit=settings.unit)
    yield script(_WAIT_HEALTHY, etcdctl=args, tries=timeout * 2, timeout=timeout)


@operation()
def cluster_healthy_wait(
    *, settings: Settings, timeout: int = 120, client: ClientFiles | None = None
) -> Generator:
    """
    Wait until every member of the cluster is healthy, as this member sees it.

    + settings: this member's validated settings
    + timeout: seconds to wait
    + client: etcdctl's certificate, key and CA file (default: this tool's)
    """
    args = etcdctl_for(settings, client)
    view = host.get_fact(EtcdCluster, etcdctl_args=args)
    if cluster_healthy(view):
        host.noop("the etcd cluster is healthy")
        return
    yield script(_WAIT_HEALTHY, etcdctl=args, tries=timeout * 2, timeout=timeout)


@operation()
def member_removed(*, settings: Settings, peers: Sequence[Peer]) -> Generator:
    """
    Take this member out of the cluster and remove its unit, configuration, data,
    certificates and renewal units.

    + settings: this member's validated settings
    + peers: every member of the inventory

    The cluster must be healthy and keep at least one other member. The data directory is
    kept aside as `<data dir>.removed` rather than deleted.
    """
    found = _other_member(host.state, settings.host, peers)
    mine: list[dict] = []
    if found is not None:
        other, view = found
        mine = [m for m in view["members"] if m["name"] == settings.node_name]
        if mine:
            if len(view["members"]) < 2:
                raise OperationError(f"{settings.node_name} is the last member: not removing it")
            if not cluster_healthy(view):
                raise OperationError(
                    f"the etcd cluster is unhealthy as {other.name} sees it: not removing "
                    f"{settings.node_name} ({view['error'] or view['health']})"
                )
            base = etcdctl_for(validate_inventory_host(host.state.inventory, other.name))
            yield FunctionCommand(
                _run_on,
                (other.name, reconfigure(base, "remove", mine[0]["id"])),
                {},
            )
    files = [settings.member_file("conf.yml"), f"/etc/systemd/system/{settings.unit}"]
    for item in settings.certificates:
        files += [item.crt, item.key, f"/etc/systemd/system/{item.unit}.service",
                  f"/etc/systemd/system/{item.unit}.timer"]  # fmt: skip
    present = host.get_fact(ExistingPaths, paths=[*files, settings.data_dir])
    if not present:
        if found is None or not mine:
            host.noop(f"{settings.node_name} is no member and has nothing left")
        return
    yield script(
        "systemctl disable --now {unit} {timers} 2>/dev/null || true; rm -f {files};"
        " if [ -d {data} ]; then rm -rf {data}.removed; mv {data} {data}.removed; fi;"
        " systemctl daemon-reload",
        files=files,
        data=settings.data_dir,
        unit=settings.unit,
        timers=[f"{item.unit}.timer" for item in settings.certificates],
    )


def _run_on(state: State, host: Host, target: str, command) -> bool:
    """Run time: one command on another host of the inventory."""
    other = state.inventory.get_host(target)
    ok, output = other.run_shell_command(command)
    if not ok:
        host.log_styled(f"on {target}: {output.stderr}", fg="red", log_func=logger.error)
    return ok


@operation()
def compacted(*, settings: Settings) -> Generator:
    """
    Compact the cluster's history up to its current revision (run on one member).

    + settings: the member's validated settings
    """
    args = etcdctl_for(settings)
    view = host.get_fact(EtcdCluster, etcdctl_args=args)
    own = member_status(view, settings.node_name)
    if own is None:
        raise OperationError(f"{settings.node_name} does not answer: {view['error']}")
    revision = int(own["revision"])
    if host.get_fact(EtcdCompacted, etcdctl_args=args, revision=revision):
        host.noop(f"history before revision {revision} is compacted already")
        return
    yield script("{c} compact {rev} --physical >/dev/null", c=args, rev=revision)


@operation()
def defragmented(*, settings: Settings, min_free_bytes: int, timeout: int = 120) -> Generator:
    """
    Defragment this member when its database holds at least `min_free_bytes` of free space.

    + settings: the member's validated settings
    + min_free_bytes: free space (db size minus size in use) that is worth a defragmentation
    + timeout: seconds to wait for cluster health afterwards

    Run with `_serial=True`: a member blocks while it defragments.
    """
    args = etcdctl_for(settings)
    view = host.get_fact(EtcdCluster, etcdctl_args=args)
    own = member_status(view, settings.node_name)
    if own is None:
        raise OperationError(f"{settings.node_name} does not answer: {view['error']}")
    free = int(own["db_size"]) - int(own["db_size_in_use"])
    if free < min_free_bytes:
        host.noop(f"{free} bytes free in the database: no defragmentation needed")
        return
    yield script("{c} defrag --command-timeout=60s >/dev/null", c=args)
    yield script(_WAIT_HEALTHY, etcdctl=args, tries=timeout * 2, timeout=timeout)
