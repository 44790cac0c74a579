"""etcd's scripts: the v2 store check before a move from 3.5, the rolling restart and the
wait for a healthy cluster."""

from __future__ import annotations

from collections.abc import Callable

from pyinfra.api import QuoteString, StringCommand

from etcd_step_pki.facts.accounts import SystemAccount
from etcd_step_pki.facts.binaries import Binaries
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.facts.certificates import NodeCertificates
from etcd_step_pki.facts.etcd import EtcdCluster, EtcdMember
from etcd_step_pki.facts.prometheus import PrometheusSetup
from etcd_step_pki.facts.revocation import RevocationLists
from etcd_step_pki.facts.trust import TrustFiles
from etcd_step_pki.facts.units import Units
from etcd_step_pki.operations.etcd.configuration import learner_start as start_learner
from etcd_step_pki.operations.etcd.member import Etcdctl, Member
from etcd_step_pki.operations.etcd.membership import reconfigure, removal
from etcd_step_pki.operations.etcd.releases import v2store_check
from etcd_step_pki.operations.etcd.restarts import restart_command, wait_healthy

CTL = Etcdctl(
    "/opt/bin/etcdctl", "/etc/etcd/pki/root.crt", "/etc/etcd/pki/c.crt", "/etc/etcd/pki/c.key"
)


def member(n: int) -> Member:
    return Member(
        host=f"etcd-{n}",
        name=f"etcd-k8s-{n}",
        address=f"10.0.0.{n}",
        data_dir=f"/var/lib/etcd/etcd-k8s-{n}",
        config_path=f"/etc/etcd/etcd-k8s-{n}.env",
        unit=f"etcd-k8s-{n}.service",
        etcdctl=CTL,
    )


def text(command: StringCommand) -> str:
    """The script of `bash -c <script> <template>`."""
    quoted = command.bits[2]
    assert isinstance(quoted, QuoteString)
    return str(quoted.obj)


def v2store() -> str:
    return text(v2store_check(member(1), bin_dir="/opt/bin", etcd_user="etcd", target="3.6.14"))


def rolling_restart() -> str:
    peers = [member(n) for n in (1, 2, 3)]
    files = ["/etc/systemd/system/etcd-k8s-1.service", "/opt/bin/etcd"]
    return text(restart_command(peers[0], CTL, peers=peers, files=files, timeout=120))


def healthy_wait() -> str:
    return text(wait_healthy(CTL, 120))


def member_add() -> str:
    return text(
        reconfigure(CTL, "add", "etcd-k8s-4", "--learner", "--peer-urls=https://10.0.0.4:2380")
    )


def member_removed() -> str:
    files = ["/etc/etcd/etcd-k8s-1.env", "/etc/systemd/system/etcd-k8s-1.service"]
    timers = ["etcd-k8s-1-peer-renew.timer", "etcd-k8s-1-server-renew.timer"]
    return text(removal(member(1), files=files, timers=timers, pairs=["/etc/etcd/ssl/n-peer.pair"]))


def learner_start() -> str:
    return text(start_learner(member(4)))


def member_fact() -> str:
    files = ["/etc/etcd/etcd-k8s-1.env", "/etc/systemd/system/etcd-k8s-1.service"]
    one = member(1)
    return text(EtcdMember().command(one.config_path, one.data_dir, one.unit, files))


def cluster_fact() -> str:
    return text(EtcdCluster().command(CTL.args))


PAIRS = [
    ("/etc/etcd/ssl/peer.crt", "/etc/etcd/ssl/peer.key"),
    ("/etc/etcd/ssl/server.crt", "/etc/etcd/ssl/server.key"),
]
CRL = "https://step-ca.k8s.internal:9000/crl"


def node_certificates() -> str:
    return text(NodeCertificates().command("/etc/etcd/ssl", "/etc/step", PAIRS))


def revocation_lists() -> str:
    return text(
        RevocationLists().command("/etc/etcd/ssl/crl.der", CRL, "/etc/etcd/ssl/root_ca.crt")
    )


def binaries() -> str:
    return text(Binaries().command("/opt/bin", ["etcd", "etcdctl", "step"]))


def units() -> str:
    return text(Units().command(["etcd-k8s-1.service", "etcd-k8s-1-peer-renew.timer"]))


def ca_records() -> str:
    from etcd_step_pki.facts.ca_records import CARecords
    from etcd_step_pki.operations.ca import STEP_CA_PAUSE

    pause = STEP_CA_PAUSE
    return text(CARecords().command("/etc/step-ca/db/bbolt.db", pause.lock, pause.limit))


def ca_state() -> str:
    return text(CAState().command("/etc/step-ca"))


def prometheus_setup() -> str:
    rules = "/etc/prometheus/rules/etcd-step-pki.yml"
    return text(PrometheusSetup().command("/etc/prometheus/prometheus.yml", rules, "prometheus"))


def system_account() -> str:
    return text(SystemAccount().command("etcd", "/var/lib/etcd", ["/var/lib/etcd/k8s"]))


def trust_files() -> str:
    return text(TrustFiles().command(["/etc/etcd/ssl/peer-ca.crt", "/etc/etcd/ssl/client-ca.crt"]))


SAMPLES: dict[str, Callable[[], str]] = {
    "facts/ca-records.sh.j2": ca_records,
    "etcd-v2store-check.sh.j2": v2store,
    "etcd-rolling-restart.sh.j2": rolling_restart,
    "etcd-healthy-wait.sh.j2": healthy_wait,
    "etcd-member-change.sh.j2": member_add,
    "etcd-member-removed.sh.j2": member_removed,
    "etcd-learner-start.sh.j2": learner_start,
    "facts/etcd-member.sh.j2": member_fact,
    "facts/etcd-cluster.sh.j2": cluster_fact,
    "facts/node-certificates.sh.j2": node_certificates,
    "facts/revocation-lists.sh.j2": revocation_lists,
    "facts/binaries.sh.j2": binaries,
    "facts/units.sh.j2": units,
    "facts/ca-state.sh.j2": ca_state,
    "facts/prometheus-setup.sh.j2": prometheus_setup,
    "facts/system-account.sh.j2": system_account,
    "facts/trust-files.sh.j2": trust_files,
}
