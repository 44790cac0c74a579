"""The CA's database with `ca_ha=active-active`: MariaDB with Galera on every cert-manager,
Galera's arbitrator (`garbd`) where one is named, and step-ca's account.

How a new cluster comes up (deploys/components/galera.py calls these in this order):
MariaDB starts alone on the first cert-manager, without Galera, and step-ca runs on it; the
CA then issues every Galera host its replication certificate (a kind of its own); then the
first node becomes a Galera cluster of one (`galera_new_cluster`), its data kept, and the
others join it one at a time, each receiving the data by a state transfer, over TLS with
those certificates. A node that finds the cluster running (re)joins it; when no node runs,
only a cluster that has never held data is started by the deploys (a cold start of a
cluster with data is the operator's, from the most advanced node).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.galera import GaleraStatus
from etcd_step_pki.facts.paths import FileText
from etcd_step_pki.operations import Change, Commands
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.templates import render
from etcd_step_pki.templates.scripts import script

# Where a Galera host keeps its replication certificate, key and the CA's root.
GALERA_SSL_DIR = "/etc/etcd-pki/galera"
NODE_ACCOUNT = "mysql"  # MariaDB's, from Debian's package
ARBITRATOR_ACCOUNT = "garbd"  # the arbitrator's, made by the deploys
ARBITRATOR_UNIT = "etcd-pki-garbd.service"
DATABASE = "step_ca"  # step-ca's records
SOCKET = "/run/mysqld/mysqld.sock"
GRASTATE = "/var/lib/mysql/grastate.dat"
BASE_CONFIG = "/etc/mysql/mariadb.conf.d/60-etcd-pki.cnf"
GALERA_CONFIG = "/etc/mysql/mariadb.conf.d/61-etcd-pki-galera.cnf"
PACKAGES = ("mariadb-server", "mariadb-backup", "galera-4", "socat")
ARBITRATOR_PACKAGES = ("galera-arbitrator-4",)
# What step-ca does with its database (smallstep/nosql's mysql driver): creates it and its
# tables when they are missing, reads and writes rows. Nothing else.
PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE, CREATE"
# What a renewed replication certificate takes: MariaDB's Galera reads it again
# (socket.ssl_reload), the arbitrator starts again (one vote away for a second).
RELOAD = {
    "node": "/usr/bin/mariadb -e \"SET GLOBAL wsrep_provider_options='socket.ssl_reload=1'\"",
    "arbitrator": f"/bin/systemctl try-restart {ARBITRATOR_UNIT}",
}
SYNCED_WAIT = 180  # seconds a node may take to join and be synced (a state transfer)


@dataclass(frozen=True)
class GaleraPeers:
    """This host's place in the CA's Galera cluster."""

    group: str  # the cluster's name
    name: str  # this node's inventory name
    address: str  # the address it replicates on
    nodes: tuple[tuple[str, str], ...]  # every MariaDB node: (name, address), first first
    voters: tuple[str, ...]  # every address with a vote (the nodes', the arbitrator's)

    @property
    def first(self) -> str:
        return self.nodes[0][0]


def tls_options(ssl_dir: str = GALERA_SSL_DIR) -> str:
    """Galera's provider options for replication over TLS with the CA's certificates."""
    return (
        f"socket.ssl_key={ssl_dir}/galera.key;socket.ssl_cert={ssl_dir}/galera.crt;"
        f"socket.ssl_ca={ssl_dir}/root_ca.crt"
    )


def account(user: str) -> str:
    """step-ca's account, `'<user>'@'localhost'` (a user name of the settings' pattern)."""
    return f"'{user}'@'localhost'"


def data_source(user: str) -> dict[str, str]:
    """ca.json's `db` for the Galera node on the same host: its socket, the account named
    after step-ca's system account (unix_socket: no password exists), the database."""
    return {"type": "mysql", "dataSource": f"{user}@unix({SOCKET})/", "database": DATABASE}


def base_config() -> str:
    """What every node runs with, with Galera or before it."""
    return render("galera-base.cnf.j2")


def galera_config(peers: GaleraPeers) -> str:
    """The node's Galera settings: the cluster, its peers and TLS."""
    return render("galera.cnf.j2", peers=peers, options=tls_options(), ssl_dir=GALERA_SSL_DIR)


def arbitrator_unit(peers: GaleraPeers) -> str:
    """garbd's unit, run as an account of its own that can read its key only."""
    return render(
        "etcd-pki-garbd.service.j2", peers=peers, options=tls_options(), user=ARBITRATOR_ACCOUNT
    )


@operation()
def started_alone() -> Commands:
    """
    MariaDB running on the first node before Galera exists: a host that never ran Galera
    (no state file) and whose MariaDB is stopped starts it, without Galera, and at boot.
    """
    found = memo.get_fact(host, GaleraStatus, grastate=GRASTATE, account=account("-"))
    if found["running"] or found["grastate"]:
        host.noop("MariaDB runs, or has run with Galera")
        return
    # No socket activation: the socket unit would hold MariaDB's port when the server stops.
    yield "systemctl disable --now --quiet mariadb.socket && systemctl enable --now mariadb.service"


@operation()
def database_account(user: str) -> Commands:
    """
    step-ca's database and account, reached on the socket by the system account of the
    same name (unix_socket: no password), with the privileges step-ca uses on its database
    only. Runs where MariaDB runs; Galera replicates it to every node.

    + user: step-ca's system account
    """
    found = memo.get_fact(host, GaleraStatus, grastate=GRASTATE, account=account(user))
    wanted = f"GRANT {PRIVILEGES} ON `{DATABASE}`.* TO `{user}`@`localhost`"
    if any(line == wanted for line in found["grants"]):
        host.noop(f"{account(user)} may use {DATABASE}")
        return
    yield script(
        "galera-account.sh.j2", database=DATABASE, account=account(user), privileges=PRIVILEGES
    )


@operation()
def bootstrapped(peers: GaleraPeers, *, cold_only: bool = False) -> Commands:
    """
    On the first node: when no node of the cluster runs, a new primary component started
    on the most advanced node, from its data: the first node when none has data yet (the
    first run of active-active); after a cold start of every node, the one Galera marked
    safe to start from (the last to stop), else the one with the highest committed
    position (read with `galera_recovery` after a crash). Every node must answer for that
    choice. Where a node runs in a primary component, nothing: the others join it
    (node_in_cluster). After a cold start the first node joins at once (its step-ca
    needs it).

    + peers: the cluster and this node's place in it
    + cold_only: only a cold start (some node has data): before step-ca starts on the
      first node, which needs its database
    """
    found = memo.get_fact(host, GaleraStatus, grastate=GRASTATE, account=account("-"))
    if found["running"] and found["status"].get("wsrep_cluster_status") == "Primary":
        host.noop("the CA's Galera cluster runs")
        return
    yield RunTimeStep(_bootstrapped, peers, cold_only)


def _bootstrapped(state: State, node: Remote, peers: GaleraPeers, cold_only: bool) -> bool:
    nodes: dict[str, Remote] = {}
    for name, _ in peers.nodes:
        try:
            nodes[name] = node if name == node.name else Remote.of(state, name, "to start Galera")
        except Exception as error:
            return node.fail(f"{name} does not answer ({error}): {_COLD_START}")
    found = {name: remote.fact(GaleraStatus, grastate=GRASTATE, account=account("-"))
             for name, remote in nodes.items()}  # fmt: skip
    if any(f["status"].get("wsrep_cluster_status") == "Primary" for f in found.values()):
        return True
    if not any(_holds_data(f) for f in found.values()):
        if cold_only:
            return True  # a new cluster: started once the CA has issued its certificates
        node.log("Galera: a new cluster, from this node's data")
        return _started(node, "bootstrap")
    chosen, reason = _most_advanced(nodes, found)
    if chosen is None:
        return node.fail(f"{reason}: {_COLD_START}")
    node.log(f"Galera: every node was down; the cluster starts again from {chosen} ({reason})")
    if not _started(nodes[chosen], "bootstrap", claim=True):
        return node.fail(f"the cluster did not start again from {chosen}")
    return chosen == node.name or _started(node, "restart")


def _most_advanced(
    nodes: dict[str, Remote], found: dict[str, dict[str, Any]]
) -> tuple[str | None, str]:
    """The node to start the cluster from, and why (None, and why not)."""
    for name in nodes:
        if found[name]["grastate"].get("safe_to_bootstrap") == "1":
            return name, "the last node to stop"
    positions = {}
    for name, remote in nodes.items():
        seqno = found[name]["grastate"].get("seqno", "-1")
        if seqno in ("", "-1"):
            # A crash: the position is in InnoDB, read by a recovery run of MariaDB.
            ok, output = remote.run(script("galera-position.sh.j2"))
            seqno = output.stdout.strip().rpartition(":")[2] if ok else ""
        if not seqno.lstrip("-").isdigit():
            return None, f"the position of {name} cannot be read"
        positions[name] = int(seqno)
    chosen = max(nodes, key=lambda name: positions[name])
    return chosen, f"the highest position, {positions[chosen]}"


_COLD_START = (
    "no node of the CA's Galera cluster runs: start the most advanced node with "
    "galera_new_cluster (see the README, cold start), then run again"
)


@operation()
def node_in_cluster(
    peers: GaleraPeers, *, restart_after: Sequence[Change] = (), bootstrap: Change | None = None
) -> Commands:
    """
    The node in the cluster, synced: started (it joins) where it does not run, restarted
    after a change of its settings (call with `_serial=True`: one node at a time), except
    where this run started the cluster on it. No node running: the run stops and says so.

    + peers: the cluster and this node's place in it
    + restart_after: operations of this run whose change needs a restart (its settings)
    + bootstrap: this run's `bootstrapped` on this node, if any
    """
    found = memo.get_fact(host, GaleraStatus, grastate=GRASTATE, account=account("-"))
    status = found["status"]
    synced = (
        found["running"]
        and status.get("wsrep_cluster_status") == "Primary"
        and status.get("wsrep_local_state_comment") == "Synced"
    )
    current = memo.get_fact(host, FileText, path=GALERA_CONFIG)
    if synced and current == galera_config(peers).rstrip("\n"):
        host.noop(f"in the CA's Galera cluster of {status.get('wsrep_cluster_size')} voters")
        return
    yield RunTimeStep(_joined, peers, tuple(restart_after), bootstrap)


def _joined(
    state: State,
    node: Remote,
    peers: GaleraPeers,
    restart_after: Sequence[Change],
    bootstrap: Change | None,
) -> bool:
    """Run time: join the running cluster (again, after a change), and wait until synced."""
    mine = node.fact(GaleraStatus, grastate=GRASTATE, account=account("-"))
    in_cluster = mine["status"].get("wsrep_cluster_status") == "Primary"
    started_here = bootstrap is not None and bootstrap.did_change()
    changed = any(item.did_change() for item in restart_after) and not started_here
    if in_cluster and not changed:
        return _started(node, "start")  # already running: waits until synced
    running, _ = _others(state, node, peers)
    if not running and not in_cluster:
        return node.fail(_COLD_START)
    node.log(f"Galera: joining through {', '.join(running) or 'itself'}")
    # A node still starting (waiting for a primary component at boot) joins by itself.
    return _started(node, "restart" if changed else "start")


def _others(state: State, node: Remote, peers: GaleraPeers) -> tuple[list[str], bool]:
    """The other nodes that are in the cluster, and whether none holds Galera data."""
    running, fresh = [], True
    for name, _ in peers.nodes:
        if name == node.name:
            continue
        remote = Remote.of(state, name, "to find the CA's Galera cluster")
        found = remote.fact(GaleraStatus, grastate=GRASTATE, account=account("-"))
        if found["status"].get("wsrep_cluster_status") == "Primary":
            running.append(name)
        fresh = fresh and not _holds_data(found)
    return running, fresh


def _started(node: Remote, action: str, *, claim: bool = False) -> bool:
    """`claim`: a bootstrap from a node Galera did not mark safe to start from (chosen by
    its position): it is marked so first."""
    command = script("galera-node-start.sh.j2", action=action, wait=SYNCED_WAIT, claim=claim,
                     grastate=GRASTATE)  # fmt: skip
    ok, output = node.run(command)
    if not ok:
        return node.fail(f"the Galera node did not sync: {output.stderr}")
    return True


def _holds_data(found: dict[str, object]) -> bool:
    """Whether a node has run with Galera (its state file names a cluster)."""
    grastate = found["grastate"]
    assert isinstance(grastate, dict)
    uuid = grastate.get("uuid", "")
    return bool(uuid) and uuid.strip("0-") != ""


def peers_of(
    group: str, name: str, nodes: Sequence[tuple[str, str]], voters: Sequence[str]
) -> GaleraPeers:
    """`name`'s place among `nodes` (MariaDB's) and `voters` (every voter's address)."""
    address = next((a for n, a in nodes if n == name), "")
    return GaleraPeers(group, name, address, tuple(nodes), tuple(voters))
