"""The `sql` probe: a query on the host's PostgreSQL server returning one number (stuck
jobs, connections in a state), graded against `warn` and `crit`.

The query runs in a read-only transaction that is rolled back, with `statement_timeout` set
to the probe's timeout: a probe looks, it never changes anything. All sql probes of a host
share one tunnel (postgres.ssh_tunnel) with health.check's server checks; each opens its own
connection, since probes run at the same time and may name different databases. The server
unreachable is CRITICAL, as the built-in postgres check says it; a query PostgreSQL refuses
is UNKNOWN (the probe is wrong, not the service).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..monitoring import Check, State
from ..pg import DatabaseError
from ..secrets import mask_text
from ..settings.probes import SqlProbe
from .base import ProbeContext, graded, measured


def probe(settings: SqlProbe, context: ProbeContext) -> Check:
    import psycopg
    from psycopg import sql

    server = context.postgres()
    try:
        connection = server.connect(settings.database, autocommit=False)
    except DatabaseError as exc:
        return Check(settings.name, State.CRITICAL, str(exc))
    timeout_ms = int(settings.timeout * 1000)
    try:
        with connection:
            connection.execute("SET TRANSACTION READ ONLY")
            connection.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(timeout_ms))
            row = connection.execute(settings.sql).fetchone()
            connection.rollback()
    except psycopg.errors.QueryCanceled:
        return Check(settings.name, State.CRITICAL, f"query ran past {settings.timeout:g}s")
    except psycopg.Error as exc:
        words = mask_text(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return Check(settings.name, State.UNKNOWN, f"query failed: {words}")
    value = _number(row)
    if value is None:
        return Check(settings.name, State.UNKNOWN, f"expected a number, got {_row_words(row)}")
    state = graded(float(value), settings.warn, settings.crit, settings.worse)
    message = measured(value, settings.warn, settings.crit)
    return Check(settings.name, state, message, value, settings.warn, settings.crit)


def _number(row: tuple[Any, ...] | None) -> int | float | None:
    """The first column of ROW as a number, if it is one."""
    if not row:
        return None
    value = row[0]
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _row_words(row: tuple[Any, ...] | None) -> str:
    return "no row" if not row else repr(row[0])[:80]
