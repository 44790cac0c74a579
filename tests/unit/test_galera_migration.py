"""An existing CA's bbolt records moved into the Galera database: the SQL made from a real
step-ca file, applied to a real MariaDB (Debian's, as on the cert-managers), every record
found there; applied twice, it merges."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import pytest

from etcd_step_pki.facts.bolt import BoltFile
from etcd_step_pki.operations.galera_migration import move_sql
from tests.harness.local_mariadb import _program, mariadb_server, query

DATABASE = Path(__file__).parent / "data" / "step-ca-bbolt.db.gz"


def _bolt() -> BoltFile:
    return BoltFile(gzip.decompress(DATABASE.read_bytes()))


def test_every_bucket_becomes_step_cas_table_with_every_record(tmp_path: Path) -> None:
    bolt = _bolt()
    sql, counts = move_sql(bolt)
    assert counts["x509_certs"] == 12 and counts["used_ott"] == 11 and counts["x509_crl"] == 1
    assert set(counts) == {b.decode() for b in bolt.buckets()}
    with mariadb_server(tmp_path) as socket:
        query(socket, "CREATE DATABASE step_ca")
        for _ in range(2):  # a second move merges: nothing doubled, nothing refused
            subprocess.run([_program("mariadb"), f"--socket={socket}", "step_ca"], input=sql,
                           text=True, check=True, capture_output=True)  # fmt: skip
        for table, count in counts.items():
            assert query(socket, f"SELECT COUNT(*) FROM step_ca.{table}") == [[str(count)]]
        # The values are the file's bytes.
        for key, value in bolt.items(b"x509_certs"):
            found = query(
                socket, f"SELECT HEX(nvalue) FROM step_ca.x509_certs WHERE nkey = 0x{key.hex()}"
            )
            assert found == [[value.hex().upper()]]
        # The table is the one step-ca's driver makes.
        described = query(socket, "SHOW CREATE TABLE step_ca.used_ott")[0][1]
        assert "`nkey` varbinary(255) NOT NULL" in described and "PRIMARY KEY (`nkey`)" in described


def test_a_bucket_that_is_no_table_name_is_refused() -> None:
    class Odd:
        def buckets(self) -> list[bytes]:
            return [b"x509_certs`; DROP TABLE x"]

    with pytest.raises(ValueError, match="no table name"):
        move_sql(Odd())  # type: ignore[arg-type]
