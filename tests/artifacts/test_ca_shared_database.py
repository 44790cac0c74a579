"""step-ca active on two instances over one SQL database (issue 30's ground), proven on
upstream's step-ca and Debian's MariaDB: step-ca's `mysql` database reached on a unix socket
with no password (the MariaDB account authenticated by the socket's peer); two step-ca
processes with the same root, intermediate and provisioners, each serving on its own port,
share every record: a token used at one is refused at the other, a certificate issued at one
is renewed at the other, one revoked at one is refused renewal at the other, and the
database holds every certificate either issued."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.local_mariadb import mariadb_server, query
from tests.harness.local_step import (
    certificate,
    free_port,
    initialised_ca,
    serving,
    step,
    token,
)

pytestmark = pytest.mark.artifacts

PROVISIONER = "etcd-pki"
DATABASE = "stepca"


@pytest.fixture(scope="module")
def two_cas(release, tmp_path_factory) -> Iterator[tuple[types.SimpleNamespace, ...]]:
    """One CA state served by two step-ca processes, both on the same MariaDB database."""
    base = tmp_path_factory.mktemp("shared-db")
    with mariadb_server(base / "mariadb") as socket:
        first = initialised_ca(release, base, PROVISIONER)
        config = json.loads(first.config.read_text())
        # go-sql-driver's DSN: the account, the socket, no password (unix_socket).
        config["db"] = {
            "type": "mysql",
            "dataSource": f"root@unix({socket})/",
            "database": DATABASE,
        }
        first.config.write_text(json.dumps(config, indent=2))
        port = free_port()
        second_config = first.config.with_name("ca-second.json")
        second_config.write_text(json.dumps(dict(config, address=f"127.0.0.1:{port}"), indent=2))
        # Its own directory for its log and the certificates it issues.
        (base / "second").mkdir()
        second = types.SimpleNamespace(
            **dict(vars(first), base=base / "second", config=second_config, port=port,
                   url=f"https://127.0.0.1:{port}")
        )  # fmt: skip
        with serving(release, first), serving(release, second):
            yield first, second, types.SimpleNamespace(socket=socket)


def _token(release, ca: types.SimpleNamespace, subject: str) -> str:
    return token(release, ca, PROVISIONER, subject)


def _certificate(release, ca, subject: str, one_time: str) -> tuple[int, str, Path]:
    crt = ca.base / f"{subject}.crt"
    done = certificate(release, ca, subject, one_time, crt)
    return done.returncode, done.stderr, crt


def _renewed(release, ca, crt: Path) -> tuple[int, str]:
    out = crt.with_name(f"renewed-{ca.port}-{crt.name}")
    done = step(
        release, ca.env, "ca", "renew", crt, crt.with_suffix(".key"), "--out", out,
        "--ca-url", ca.url, "--root", ca.root, "--force", check=False,
    )  # fmt: skip
    return done.returncode, done.stderr


def _serial(release, ca, crt: Path) -> str:
    return step(release, ca.env, "certificate", "inspect", crt, "--format", "json").stdout


def test_a_token_used_at_one_ca_is_refused_at_the_other(release, two_cas) -> None:
    first, second, _ = two_cas
    token = _token(release, first, "client-1")
    assert _certificate(release, first, "client-1", token)[0] == 0
    assert _certificate(release, second, "client-1", token)[0] != 0
    # What step-ca says in its log (the client is told only that it is not authorised).
    assert "authorizeSign: token already used" in (second.base / "step-ca.log").read_text()
    # A token of its own works at the second.
    assert _certificate(release, second, "client-2", _token(release, second, "client-2"))[0] == 0


def test_a_certificate_of_one_ca_is_renewed_and_revoked_at_the_other(release, two_cas) -> None:
    first, second, _ = two_cas
    _, _, crt = _certificate(release, first, "client-3", _token(release, first, "client-3"))
    assert _renewed(release, second, crt)[0] == 0
    # Revoked at the second with the certificate itself (mTLS: its own key).
    step(
        release, second.env, "ca", "revoke", "--cert", crt, "--key", crt.with_suffix(".key"),
        "--ca-url", second.url, "--root", second.root,
    )  # fmt: skip
    assert _renewed(release, first, crt)[0] != 0
    log = (first.base / "step-ca.log").read_text()
    assert "authorizeRenew: certificate has been revoked" in log


def test_the_database_holds_what_each_ca_issued(release, two_cas) -> None:
    first, second, db = two_cas
    issued = []
    for ca, subject in ((first, "client-4"), (second, "client-5")):
        _, _, crt = _certificate(release, ca, subject, _token(release, ca, subject))
        issued.append(json.loads(_serial(release, ca, crt))["serial_number"])
    keys = {row[0] for row in query(db.socket, f"SELECT nkey FROM {DATABASE}.x509_certs")}
    assert set(issued) <= keys
    tokens = query(db.socket, f"SELECT COUNT(*) FROM {DATABASE}.used_ott")
    assert int(tokens[0][0]) >= 2
