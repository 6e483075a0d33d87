"""What a restored database is checked against: the manifest's row counts and the user's SQL.

Exact counts must match; estimates (tables past the size cap at dump time) must fall within a
tolerance. User checks return one value: a boolean that must be true, or a number that must be
at least `min`.

The counts come from the restore itself where they can: the server counts the rows each
session inserts (pg_stat_user_tables.n_tup_ins) and publishes them when the session ends, so
once pg_restore's sessions are gone one query gives every table's rows, where count(*) would
read every table again. A table whose figure does not match (statistics off, a table that
held rows before) is counted with count(*), so a mismatch is only ever reported on a real
count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from backups.archive.manifest import TableCount
from maintenance.settings.backup import RestoreCheck

# How long to wait for pg_restore's sessions to end before reading what they inserted.
SESSIONS_GONE_S = 5.0


@dataclass(frozen=True)
class CountCheck:
    table: str
    expected: int
    actual: int | None
    exact: bool
    ok: bool
    counted_by: str = "count(*)"  # or "restore": the rows the restore's sessions inserted

    def reason(self) -> str:
        if self.actual is None:
            return f"table {self.table} is missing from the restore"
        return f"table {self.table}: {self.actual} rows restored, manifest says {self.expected}"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    value: Any
    ok: bool
    error: str | None = None


def compare_counts(
    connection: psycopg.Connection, expected: dict[str, TableCount], tolerance: float
) -> list[CountCheck]:
    """Compare every manifest table's rows in the restored database with the manifest."""
    inserted = _inserted_rows(connection)
    results = []
    for name, count in sorted(expected.items()):
        if name not in inserted:
            results.append(CountCheck(name, count.rows, None, count.exact, False))
            continue
        table, rows = inserted[name]
        if _matches(rows, count, tolerance):
            results.append(CountCheck(name, count.rows, rows, count.exact, True, "restore"))
            continue
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(*map(sql.Identifier, table))
        row = connection.execute(query).fetchone()
        assert row is not None  # count(*) always returns one row
        actual = int(row[0])
        ok = _matches(actual, count, tolerance)
        results.append(CountCheck(name, count.rows, actual, count.exact, ok))
    return results


def _inserted_rows(connection: psycopg.Connection) -> dict[str, tuple[tuple[str, str], int]]:
    """ "schema.table" -> ((schema, table), rows inserted so far), once no pg_restore session
    is left on the database (their figures are published as they end). pg_restore runs with
    this connection's application name (`maint <task>`, pg.Postgres.client), which tells its
    sessions from an application's."""
    deadline = time.monotonic() + SESSIONS_GONE_S
    while (
        time.monotonic() < deadline
        and connection.execute(
            "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = current_setting('application_name')"
            " AND pid <> pg_backend_pid() LIMIT 1"
        ).fetchone()
    ):
        time.sleep(0.02)
    connection.execute("SELECT pg_stat_clear_snapshot()")
    rows = connection.execute(
        "SELECT schemaname, relname, n_tup_ins FROM pg_stat_user_tables"
    ).fetchall()
    return {f"{schema}.{table}": ((schema, table), int(n)) for schema, table, n in rows}


def _matches(actual: int, count: TableCount, tolerance: float) -> bool:
    return actual == count.rows if count.exact else _within(actual, count.rows, tolerance)


def _within(actual: int, estimate: int, tolerance: float) -> bool:
    return abs(actual - estimate) <= max(tolerance * max(estimate, actual), 1000)


def run_user_checks(
    connection: psycopg.Connection, checks: list[RestoreCheck]
) -> list[CheckOutcome]:
    """Run each check in the restored database; an error fails that check only."""
    outcomes = []
    for index, check in enumerate(checks, start=1):
        name = check.name or f"check {index}"
        try:
            row = connection.execute(check.sql).fetchone()  # the user's own SQL, from vars
        except psycopg.Error as exc:
            outcomes.append(CheckOutcome(name, None, False, str(exc).strip()))
            continue
        value = row[0] if row else None
        outcomes.append(CheckOutcome(name, value, _passes(value, check.min)))
    return outcomes


def _passes(value: Any, minimum: float | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value >= (minimum if minimum is not None else 1)
    return False
