"""The CA and certificate side's scripts: the CA's initialisation, health wait, proof, and
the installation of release binaries."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from pyinfra.api import StringCommand

from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.operations import ca
from tests.unit.fakes import FakeHost, run_op

PATH = "/etc/step-ca"


def _text(command: StringCommand) -> str:
    """The script of a `bash -c <script> <name>` command."""
    return str(command.bits[2].obj)


def ca_init() -> str:
    from etcd_step_pki.facts.ca import CAState

    state = {"config": None, "root": None, "intermediate": None, "files": {}}
    command, _record = run_op(
        ca.authority,
        FakeHost({CAState: state}),
        PATH,
        ca_name="etcd-k8s CA",
        dns_names=["etcd-k8s-1", "10.0.0.1"],
        port=9000,
        provisioner="etcd-pki",
    )
    return _text(command)


def ca_healthy_wait() -> str:
    return _text(ca._wait_healthy("etcd-k8s-1", 9000, f"{PATH}/certs/root_ca.crt", 60))


def ca_issuance_proof() -> str:
    (command,) = run_op(ca.issuance_proven, FakeHost({}), PATH, port=9000, provisioner="etcd-pki")
    return _text(command)


def binaries_install() -> str:
    from etcd_step_pki.facts.binaries import Binaries
    from etcd_step_pki.operations.binaries import Artifact, release_binaries

    info = {"arch": "amd64", "machine": "x86_64", "versions": {}}
    etcd = Artifact("etcd", "3.6.5", {"amd64": "0" * 64}, "upstream")
    *_, install = run_op(
        release_binaries, FakeHost({Binaries: info}), [etcd], keep_previous=["etcd"]
    )
    return _text(install)


def root_key_export() -> str:
    from etcd_step_pki.templates.scripts import script

    return _text(script("ca-root-key-export.sh.j2", key=f"{PATH}/secrets/root_ca_key"))


def intermediate_rotate() -> str:
    """With the root key offline: the online form differs by the line that names the key."""
    import datetime as dt

    from etcd_step_pki.operations.root_key import OfflineRoot
    from etcd_step_pki.operations.roots import root_fingerprint
    from etcd_step_pki.operations.rotation import intermediate_rotated
    from tests.unit.test_day2_operations import NOW, _ca_host  # a CA with real certificates

    host = _ca_host(NOW - dt.timedelta(days=30))
    host.facts[CAState]["files"] = {}  # the root key on no disk
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory, "root-key.gpg")
        fingerprint = root_fingerprint(host.facts[CAState]["root"])
        export.write_text(f"# root {fingerprint}\n-----BEGIN PGP MESSAGE-----\n")
        step, _ = run_op(
            intermediate_rotated,
            host,
            path=PATH,
            issued_before=NOW.timestamp(),
            duration="87600h",
            now=NOW.timestamp(),
            offline_root=OfflineRoot(str(export), "private"),
        )
    return _text(step.args[0])


AUTHORITY = "https://etcd-k8s-1:9000"
ROOT = "/etc/etcd/ssl/root_ca.crt"


def tokens_mint() -> str:
    from etcd_step_pki.operations.tokens import Authority, TokenItem, TokenRequest, mint_command

    peer = TokenItem("peer", "etcd-k8s-peer", "etcd-pki-k8s-peer")
    requests = [
        TokenRequest(f"etcd-k8s-{n}", (peer, TokenItem("server", f"etcd-k8s-{n}")),
                     (f"etcd-k8s-{n}", f"10.0.0.{n}"), "17520h", AUTHORITY)
        for n in range(1, 6)
    ]  # fmt: skip
    return _text(mint_command(Authority(AUTHORITY, "etcd-k8s-1"), requests))


def revoke() -> str:
    from etcd_step_pki.operations.revocation import revoke_command
    from etcd_step_pki.operations.tokens import Authority

    command = revoke_command(
        Authority(AUTHORITY, "etcd-k8s-1"), [10, 255], "host removed", "cessationOfOperation"
    )
    return _text(command)


def certificates_issue() -> str:
    import shlex

    from etcd_step_pki.operations.certificates import (
        Certificate,
        Issuance,
        StepNode,
        _certificate_command,
    )

    items = [
        Certificate("peer", "etcd-k8s-1", "/etc/etcd/ssl/peer.crt", "/etc/etcd/ssl/peer.key"),
        Certificate("server", "etcd-k8s-1", "/etc/etcd/ssl/server.crt", "/etc/etcd/ssl/server.key"),
    ]
    command = _certificate_command(StepNode(), AUTHORITY, Issuance(key_type="RSA"), items)
    return shlex.split(command)[2]  # bash -c <script> <template>


def certificates_adopt() -> str:
    from etcd_step_pki.operations.certificates import Certificate
    from etcd_step_pki.operations.key_pairs import script_paths
    from etcd_step_pki.templates.scripts import script

    items = [
        Certificate(kind, "etcd-k8s-1", f"/etc/etcd/ssl/{kind}.crt", f"/etc/etcd/ssl/{kind}.key")
        for kind in ("peer", "server")
    ]
    return _text(script("certificates-adopt.sh.j2", certificates=script_paths(items)))


def renewal_now() -> str:
    from etcd_step_pki.facts.certificates import NodeCertificates
    from etcd_step_pki.operations.certificates import Certificate, StepNode
    from etcd_step_pki.operations.renewal import renewed_now

    items = [
        Certificate(kind, "etcd-k8s-1", f"/etc/etcd/ssl/{kind}.crt", f"/etc/etcd/ssl/{kind}.key")
        for kind in ("peer", "server")
    ]
    files = {item.crt: {"cert": {"not_before": 0.0}} for item in items}
    host = FakeHost({NodeCertificates: {"files": files}})
    (command,) = run_op(renewed_now, host, items, node=StepNode(), issued_before=1000.0)
    return _text(command)


def crl_fetch() -> str:
    from etcd_step_pki.facts.revocation import RevocationLists
    from etcd_step_pki.operations.revocation import crl_current

    host = FakeHost({RevocationLists: {"local": {1}, "ca": {1, 2}}})
    url = f"{AUTHORITY}/1.0/crl"
    chain = "/etc/etcd/ssl/ca-chain.crt"
    path = "/etc/etcd/ssl/ca.crl"
    (command,) = run_op(crl_current, host, path, crl_url=url, root=ROOT, chain=chain)
    return _text(command)


def crl_check() -> str:
    from etcd_step_pki.operations.revocation import crl_check_script

    return crl_check_script("/etc/etcd/ssl/ca-chain.crt", "/etc/etcd/ssl/ca.crl")


def account_directories() -> str:
    from etcd_step_pki.facts.accounts import SystemAccount
    from etcd_step_pki.operations.accounts import system_account

    found = {**SystemAccount.default(), "home_owner": "etcd:etcd 755"}
    host = FakeHost({SystemAccount: found})
    data = ["/var/lib/etcd/etcd-k8s-1", "/var/lib/etcd/etcd-k8s-events-1"]
    commands = run_op(system_account, host, "etcd", home="/var/lib/etcd", private_dirs=data)
    return _text(commands[-1])


def run_lock() -> str:
    from etcd_step_pki.deploys.components.run_lock import HOLDER
    from etcd_step_pki.templates.scripts import script

    return _text(script("run-lock.sh.j2", holder=HOLDER))


SAMPLES: dict[str, Callable[[], str]] = {
    "run-lock.sh.j2": run_lock,
    "account-directories.sh.j2": account_directories,
    "crl-fetch.sh.j2": crl_fetch,
    "crl-check.sh.j2": crl_check,
    "renewal-now.sh.j2": renewal_now,
    "certificates-issue.sh.j2": certificates_issue,
    "certificates-adopt.sh.j2": certificates_adopt,
    "ca-tokens-mint.sh.j2": tokens_mint,
    "ca-revoke.sh.j2": revoke,
    "ca-intermediate-rotate.sh.j2": intermediate_rotate,
    "ca-root-key-export.sh.j2": root_key_export,
    "binaries-install.sh.j2": binaries_install,
    "ca-init.sh.j2": ca_init,
    "ca-healthy-wait.sh.j2": ca_healthy_wait,
    "ca-issuance-proof.sh.j2": ca_issuance_proof,
}
