"""Sample databases, restores and content digests for backup and restore tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from psycopg import sql

from backups.archive.codecs import decompressing_reader
from backups.archive.layout import parse_key
from backups.stores import Store
from tests.harness import Cluster

ODD_TABLE = "Order Items"
EVIL_TABLE = 'x"; DROP TABLE customers; --'


def make_sample_database(cluster: Cluster, name: str, rows: int = 5000) -> None:
    """A small shop: a few tables with real-looking rows, odd names among them."""
    cluster.create_database(name)
    with cluster.connect(name) as connection:
        connection.execute(
            "CREATE TABLE customers"
            " (id bigserial PRIMARY KEY, email text NOT NULL, created timestamptz)"
        )
        connection.execute(
            "INSERT INTO customers (email, created) SELECT 'user' || i || '@example.com',"
            " now() - i * interval '1 minute' FROM generate_series(1, %s) i",
            (rows,),
        )
        connection.execute("CREATE SCHEMA sales")
        connection.execute(
            sql.SQL("CREATE TABLE sales.{} (id int, sku text, qty int)").format(
                sql.Identifier(ODD_TABLE)
            )
        )
        connection.execute(
            sql.SQL(
                "INSERT INTO sales.{} SELECT i, md5(i::text), i %% 7 FROM generate_series(1, %s) i"
            ).format(sql.Identifier(ODD_TABLE)),
            (rows * 2,),
        )
        connection.execute(
            sql.SQL("CREATE TABLE {} (note text)").format(sql.Identifier(EVIL_TABLE))
        )
        connection.execute(
            sql.SQL("INSERT INTO {} VALUES ('still here')").format(sql.Identifier(EVIL_TABLE))
        )


def table_digests(cluster: Cluster, database: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of the sorted rows of every user table: equal digests, equal data."""
    digests = {}
    with cluster.connect(database) as connection:
        tables = connection.execute(
            "SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '')"
                " FROM {}.{} t"
            ).format(sql.Identifier(schema), sql.Identifier(table))
            count, digest = connection.execute(query).fetchone()
            digests[f"{schema}.{table}"] = (count, digest)
    return digests


def restore_into(store: Store, key: str, cluster: Cluster, database: str) -> None:
    """Restore a stored dump with the real pg_restore, streamed from the store."""
    cluster.create_database(database)
    codec = parse_key(key).codec
    process = subprocess.Popen(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "-d",
            cluster.dsn(database, with_password=False),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PGPASSWORD": cluster.password, "PATH": "/usr/bin:/bin"},
    )
    with store.open_read(key) as raw:
        reader = decompressing_reader(codec, raw)
        while chunk := reader.read(1 << 20):
            process.stdin.write(chunk)
    process.stdin.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 0, stderr


def stored_keys(root: Path) -> list[str]:
    """Every file under a local store's root, hidden temporaries included."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
