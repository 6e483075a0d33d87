"""restore.db --table: what a restore of some tables needs beyond a whole-database one.

Which of the tables the target already has (so --force is needed), their schemas created
where missing, and pg_restore told to restore only them (backups.postgres.table_list).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import sql

from backups.archive.manifest import Manifest
from backups.postgres.table_list import read_toc, table_entries, use_list
from maintenance import pg
from maintenance.runners import Runner
from maintenance.tablenames import Table, qualified_name


def manifest_tables(manifest: Manifest) -> list[Table]:
    """The tables a backup holds, from its manifest's row counts ("schema.table")."""
    return [(name.split(".", 1)[0], name.split(".", 1)[1]) for name in manifest.tables]


def table_names(tables: list[Table]) -> str:
    return ", ".join(qualified_name(table) for table in tables)


def tables_state(server: pg.Postgres, database: str, tables: list[Table]) -> str:
    """'empty' when DATABASE (which exists) has none of TABLES, else the names of those it has."""
    with server.connect(database) as connection:
        rows = connection.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
        ).fetchall()
    present = [table for table in tables if table in set(rows)]
    return table_names(present) if present else "empty"


def create_schemas(server: pg.Postgres, database: str, tables: list[Table]) -> None:
    """The schemas of TABLES, where missing: a table-level restore brings none of its own
    (restoring the schema's entry would drop it, and all it holds, under --clean)."""
    with server.connect(database) as connection:
        for schema in sorted({schema for schema, _ in tables}):
            connection.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
            )


@contextmanager
def only_tables(runner: Runner, path: str, tables: list[Table]) -> Iterator[str]:
    """Yield pg_restore's --use-list option restoring TABLES of the dump at PATH (written
    beside it on the host, removed afterwards)."""
    listing = path + ".list"
    entries = table_entries(read_toc(runner, path), tables)
    runner.run(["sh", "-c", 'cat > "$1"', "sh", listing], stdin=io.BytesIO(use_list(entries)))
    try:
        yield f"--use-list={listing}"
    finally:
        runner.run(["rm", "-f", listing])
