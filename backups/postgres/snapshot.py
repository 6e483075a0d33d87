"""A snapshot held open while pg_dump runs, and row counts taken inside it.

pg_dump imports the exported snapshot (`--snapshot`), so the dump and the manifest's counts
describe the same instant even while writers keep inserting: a restore can be checked exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from backups.archive.manifest import TableCount
from maintenance import pg

_TABLES = """
SELECT n.nspname, c.relname, pg_relation_size(c.oid), c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


@contextmanager
def exported_snapshot(
    server: pg.Postgres, database: str
) -> Iterator[tuple[psycopg.Connection, str]]:
    """Yield a REPEATABLE READ, READ ONLY transaction and its exported snapshot id.

    The transaction stays open until the block ends: pg_dump needs it alive to import it.
    """
    connection = server.connect(database, autocommit=False)
    try:
        connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        yield connection, str(row[0])
    finally:
        connection.rollback()
        connection.close()


def user_tables(connection: psycopg.Connection) -> list[tuple[str, str]]:
    """(schema, table) of every user table a dump holds, as count_rows sees them."""
    return [(schema, table) for schema, table, _, _ in connection.execute(_TABLES).fetchall()]


def count_rows(
    connection: psycopg.Connection,
    exact_limit_bytes: int,
    only: Collection[tuple[str, str]] | None = None,
) -> dict[str, TableCount]:
    """Row count of every user table (or of those ONLY names); tables above EXACT_LIMIT_BYTES
    get the planner's estimate."""
    counts: dict[str, TableCount] = {}
    for schema, table, size, estimate in connection.execute(_TABLES).fetchall():
        if only is not None and (schema, table) not in only:
            continue
        name = f"{schema}.{table}"
        if size > exact_limit_bytes:
            counts[name] = TableCount(max(int(estimate), 0), exact=False)
            continue
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = connection.execute(query).fetchone()
        assert row is not None
        counts[name] = TableCount(int(row[0]), exact=True)
    return counts


def server_version(connection: psycopg.Connection) -> tuple[str, int]:
    """The server's version text and major number."""
    row = connection.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    return str(row[0]).split()[0], int(row[1]) // 10000
