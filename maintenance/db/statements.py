"""Every statement the db tasks run, built as data: no connection needed to make or test them.

Identifiers always go through psycopg.sql.Identifier and values travel as bound parameters,
so a table called `x"; DROP TABLE y; --` is only ever a name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Statement:
    """A query and its parameters; `text` shows it exactly as it would be sent."""

    query: sql.Composed | sql.SQL
    params: Sequence[Any] | Mapping[str, Any] | None = None

    def text(self, connection: psycopg.Connection) -> str:
        """The statement with its parameters inlined as CONNECTION would quote them."""
        return psycopg.ClientCursor(connection).mogrify(self.query, self.params)


def milliseconds(duration: timedelta) -> str:
    """A PostgreSQL setting value for DURATION; '0' turns the timeout off."""
    return f"{round(duration.total_seconds() * 1000)}ms"


def set_timeouts(lock_timeout: timedelta, statement_timeout: timedelta) -> Statement:
    """Session settings that bound how long any maintenance statement may wait or run."""
    return Statement(
        sql.SQL(
            "SELECT set_config('lock_timeout', %s, false),"
            " set_config('statement_timeout', %s, false)"
        ),
        (milliseconds(lock_timeout), milliseconds(statement_timeout)),
    )


def _options(*flags: tuple[str, bool]) -> sql.Composable:
    chosen = [sql.SQL(name) for name, wanted in flags if wanted]
    return sql.SQL(" ({})").format(sql.SQL(", ").join(chosen)) if chosen else sql.SQL("")


def vacuum(schema: str, table: str, *, full: bool = False, analyze: bool = True) -> Statement:
    """VACUUM (ANALYZE) of one table; FULL rewrites it under an ACCESS EXCLUSIVE lock."""
    return Statement(
        sql.SQL("VACUUM{} {}").format(
            _options(("FULL", full), ("ANALYZE", analyze)), sql.Identifier(schema, table)
        )
    )


def analyze(schema: str, table: str, *, verbose: bool = False) -> Statement:
    """ANALYZE of one table; VERBOSE makes the server send progress messages."""
    return Statement(
        sql.SQL("ANALYZE{} {}").format(
            _options(("VERBOSE", verbose)), sql.Identifier(schema, table)
        )
    )


def reindex_index(schema: str, index: str, *, concurrently: bool = True) -> Statement:
    """REINDEX INDEX, CONCURRENTLY unless a blocking rebuild was asked for."""
    return Statement(
        sql.SQL("REINDEX INDEX {}{}").format(
            sql.SQL("CONCURRENTLY ") if concurrently else sql.SQL(""),
            sql.Identifier(schema, index),
        )
    )


def drop_index(schema: str, index: str) -> Statement:
    """DROP INDEX CONCURRENTLY: removes an index without blocking writes to its table."""
    return Statement(
        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema, index))
    )


def purge_count(schema: str, table: str, column: str, cutoff: datetime) -> Statement:
    """How many rows a purge with CUTOFF would delete, and how many the table has: one scan."""
    return Statement(
        sql.SQL("SELECT count(*) FILTER (WHERE {1} < %s), count(*) FROM ONLY {0}").format(
            sql.Identifier(schema, table), sql.Identifier(column)
        ),
        (cutoff,),
    )


def purge_batch(schema: str, table: str, column: str, cutoff: datetime, batch: int) -> Statement:
    """Delete at most BATCH rows older than CUTOFF; by ctid, so no primary key is needed.

    ONLY keeps inheritance children out: their ctids would collide with the parent's.
    """
    return Statement(
        sql.SQL(
            "DELETE FROM ONLY {table} WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM ONLY {table} WHERE {column} < %s LIMIT %s))"
        ).format(table=sql.Identifier(schema, table), column=sql.Identifier(column)),
        (cutoff, batch),
    )


_SIGNALS = {"cancel": "pg_cancel_backend", "terminate": "pg_terminate_backend"}
_SINCE = {"query_start", "state_change"}


def signal_session(
    action: str, pid: int, backend_start: datetime, since_column: str, since: datetime, state: str
) -> Statement:
    """Cancel or terminate one session, only if it is still the same one in the same state.

    Matching backend_start, state and the time the query or idle state began means a pid
    reused by a new session, or a session that moved on to a new query, is left alone.
    """
    if action not in _SIGNALS or since_column not in _SINCE:
        raise ValueError(f"unknown session action {action!r} or column {since_column!r}")
    return Statement(
        sql.SQL(
            "SELECT {function}(pid) FROM pg_stat_activity"
            " WHERE pid = %s AND backend_start = %s AND {since} = %s AND state = %s"
        ).format(function=sql.Identifier(_SIGNALS[action]), since=sql.Identifier(since_column)),
        (pid, backend_start, since, state),
    )
