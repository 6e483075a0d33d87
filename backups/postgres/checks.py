"""What a restored database is checked against: the manifest's row counts and the user's SQL.

Exact counts must match; estimates (tables past the size cap at dump time) must fall within a
tolerance. User checks return one value: a boolean that must be true, or a number that must be
at least `min`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from backups.archive.manifest import TableCount
from maintenance.settings.backup import RestoreCheck


@dataclass(frozen=True)
class CountCheck:
    table: str
    expected: int
    actual: int | None
    exact: bool
    ok: bool

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
    """Count every manifest table in the restored database and compare."""
    present = {
        f"{schema}.{table}": (schema, table)
        for schema, table in connection.execute(
            "SELECT schemaname, relname FROM pg_stat_user_tables"
        ).fetchall()
    }
    results = []
    for name, count in sorted(expected.items()):
        if name not in present:
            results.append(CountCheck(name, count.rows, None, count.exact, False))
            continue
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(*map(sql.Identifier, present[name]))
        row = connection.execute(query).fetchone()
        assert row is not None  # count(*) always returns one row
        actual = int(row[0])
        ok = actual == count.rows if count.exact else _within(actual, count.rows, tolerance)
        results.append(CountCheck(name, count.rows, actual, count.exact, ok))
    return results


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
