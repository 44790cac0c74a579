"""An existing CA's records moved from its bbolt file into the Galera database, when a CA
of the standby layout becomes active-active: every record kept (issued certificates,
revocations, used tokens, everything else step-ca keeps), counted on both sides.

step-ca has no migration of its own from bbolt (its `badger-migration` reads Badger only),
so the deploys read the file with their own bbolt reader (facts/bolt.py) and write each
bucket as the table step-ca's MySQL driver makes (smallstep/nosql: `nkey VARBINARY(255)`,
`nvalue BLOB`, primary key `nkey`)."""

from __future__ import annotations

import base64
import binascii
import re

from pyinfra import host
from pyinfra.api import operation
from pyinfra.api.state import State

from etcd_step_pki.facts import memo
from etcd_step_pki.facts.bolt import BoltError, BoltFile
from etcd_step_pki.facts.ca import CAState
from etcd_step_pki.facts.shell import script
from etcd_step_pki.operations import Commands
from etcd_step_pki.operations.ca import DATABASE as DB_DIR
from etcd_step_pki.operations.galera import DATABASE
from etcd_step_pki.operations.remote import Remote, RunTimeStep
from etcd_step_pki.templates.scripts import script as run_script

_TABLE = re.compile(r"^[A-Za-z0-9_]+$")


def move_sql(bolt: BoltFile) -> tuple[str, dict[str, int]]:
    """The SQL that writes every bucket of `bolt` as step-ca's table, in one transaction,
    and each table's count of records. ValueError for a bucket name that is no plain table
    name (step-ca's are)."""
    lines = ["START TRANSACTION;"]
    counts = {}
    for bucket in bolt.buckets():
        name = bucket.decode("ascii", "replace")
        if not _TABLE.match(name):
            raise ValueError(f"bucket {name!r} is no table name step-ca makes")
        lines.append(
            f"CREATE TABLE IF NOT EXISTS `{name}`"
            "(nkey VARBINARY(255), nvalue BLOB, PRIMARY KEY (nkey));"
        )
        rows = [f"({_literal(key)}, {_literal(value)})" for key, value in bolt.items(bucket)]
        for start in range(0, len(rows), 200):
            lines.append(
                f"INSERT INTO `{name}` (nkey, nvalue) VALUES {', '.join(rows[start : start + 200])}"
                " ON DUPLICATE KEY UPDATE nvalue = VALUES(nvalue);"
            )
        counts[name] = len(rows)
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n", counts


def _literal(data: bytes) -> str:
    """Bytes as an SQL literal: hexadecimal, or '' (MariaDB reads `0x` alone as no number)."""
    return f"0x{data.hex()}" if data else "''"


@operation()
def records_moved(path: str) -> Commands:
    """
    The CA's records moved from its bbolt file into the Galera database, with step-ca
    stopped until ca.json names the database (the next operation): every run that finds
    ca.json on bbolt moves them again (a merge), so a run that ended half-way loses nothing.

    + path: the CA's `$STEPPATH`
    """
    found = memo.get_fact(host, CAState, path=path)
    config = found["config"] or {}
    source = f"{path}/{DB_DIR}/bbolt.db"
    if (config.get("db") or {}).get("type") != "bbolt" or source not in found["files"]:
        host.noop("no records in a bbolt file to move")
        return
    yield RunTimeStep(_moved, source)


def _moved(state: State, node: Remote, source: str) -> bool:
    """Run time: the file read, its records written to the database and counted there."""
    del state
    ok, output = node.run(script("base64 -w 0 {f}", f=source))
    if not ok:
        return node.fail(f"reading {source} failed: {output.stderr}")
    try:
        bolt = BoltFile(base64.b64decode("".join(output.stdout_lines), validate=True))
        sql, counts = move_sql(bolt)
    except (BoltError, binascii.Error, ValueError) as error:
        return node.fail(f"{source} does not read, nothing moved: {error}")
    ok, output = node.run(
        run_script("galera-records-move.sh.j2", database=DATABASE, counts=counts), stdin=sql
    )
    if not ok:
        return node.fail(
            f"moving the CA's records failed, step-ca runs on {source}: {output.stderr}"
        )
    node.log(
        "the CA's records moved to the Galera database: "
        + ", ".join(f"{name} {count}" for name, count in counts.items())
    )
    return True
