"""What the server knows about tables and indexes, read without locking any of them.

Listings come from the statistics views and the system catalogs only; anything that must
open a relation (its size, pgstattuple) is asked per relation under lock_timeout, so a table
someone holds locked costs one bounded wait instead of failing the whole listing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors, sql

# Schemas the product never maintains: the catalogs and other sessions' temporary objects.
_USER_RELATION = sql.SQL(
    "n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname !~ '^pg_toast' AND c.relpersistence <> 't'"
)


@dataclass(frozen=True)
class TableStats:
    """Activity counters of one table since its statistics were last reset."""

    oid: int
    schema: str
    name: str
    live_tuples: int
    dead_tuples: int
    modified_since_analyze: int
    estimated_rows: float
    last_analyzed: datetime | None

    @property
    def dead_ratio(self) -> float:
        return self.dead_tuples / max(1, self.live_tuples + self.dead_tuples)


_TABLE_STATS = sql.SQL(
    """
SELECT s.relid, s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       c.reltuples, greatest(s.last_analyze, s.last_autoanalyze)
FROM pg_stat_user_tables s
JOIN pg_class c ON c.oid = s.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {user_relation} AND (%(oid)s::oid IS NULL OR s.relid = %(oid)s::oid)
ORDER BY s.schemaname, s.relname
"""
).format(user_relation=_USER_RELATION)


def table_stats(connection: psycopg.Connection, oid: int | None = None) -> list[TableStats]:
    """Statistics of every user table, or of the one with OID."""
    rows = connection.execute(_TABLE_STATS, {"oid": oid}).fetchall()
    return [TableStats(*row) for row in rows]


@dataclass(frozen=True)
class Index:
    """One index and what constrains how it may be rebuilt or reported."""

    oid: int
    schema: str
    name: str
    table: str
    table_oid: int
    method: str
    valid: bool
    backs_constraint: bool
    unique: bool
    exclusion: bool
    fillfactor: int | None
    scans: int | None


_INDEXES = sql.SQL(
    """
SELECT i.indexrelid, n.nspname, c.relname, t.relname, i.indrelid, am.amname, i.indisvalid,
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')),
       i.indisunique OR i.indisprimary,
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conindid = i.indexrelid AND k.contype = 'x'),
       (SELECT option_value::int FROM pg_options_to_table(c.reloptions)
        WHERE option_name = 'fillfactor'),
       s.idx_scan
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
WHERE c.relkind = 'i' AND {user_relation}
ORDER BY n.nspname, c.relname
"""
).format(user_relation=_USER_RELATION)


def indexes(connection: psycopg.Connection) -> list[Index]:
    """Every index on a user table (partitioned parents excluded: they hold no data)."""
    return [Index(*row) for row in connection.execute(_INDEXES).fetchall()]


def index_oid(connection: psycopg.Connection, schema: str, name: str) -> int | None:
    """The oid of index SCHEMA.NAME now (a concurrent rebuild gives it a new one)."""
    row = connection.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'i'",
        (schema, name),
    ).fetchone()
    return int(row[0]) if row else None


def relation_size(connection: psycopg.Connection, oid: int) -> int | None:
    """Size of a relation's main data in bytes; None if it stayed locked past lock_timeout."""
    try:
        row = connection.execute("SELECT pg_relation_size(%s::oid)", (oid,)).fetchone()
    except errors.LockNotAvailable:
        return None
    return int(row[0]) if row and row[0] is not None else 0


def table_size(connection: psycopg.Connection, oid: int) -> int | None:
    """Size of a table with its TOAST data, free-space and visibility maps, as VACUUM sees it.

    None if the table stayed locked past lock_timeout.
    """
    try:
        row = connection.execute("SELECT pg_table_size(%s::oid)", (oid,)).fetchone()
    except errors.LockNotAvailable:
        return None
    return int(row[0]) if row and row[0] is not None else 0


def extension_schema(connection: psycopg.Connection, name: str) -> str | None:
    """The schema an installed extension lives in, or None when it is not installed."""
    row = connection.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = %s",
        (name,),
    ).fetchone()
    return str(row[0]) if row else None


def block_size(connection: psycopg.Connection) -> int:
    row = connection.execute("SELECT current_setting('block_size')::int").fetchone()
    assert row is not None
    return int(row[0])


def stats_reset(connection: psycopg.Connection) -> datetime | None:
    """When this database's statistics counters were last reset (None: never)."""
    row = connection.execute(
        "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    return row[0] if row else None


def tables_being_indexed(connection: psycopg.Connection) -> set[int]:
    """Tables with a CREATE INDEX or REINDEX in progress right now, in any session."""
    rows = connection.execute("SELECT relid FROM pg_stat_progress_create_index").fetchall()
    return {int(row[0]) for row in rows}


@dataclass(frozen=True)
class ColumnWidths:
    """pg_stats figures summed over a relation's (or index's) columns."""

    oid: int
    known: bool
    width: float
    has_nulls: bool
    columns: int
    estimated_rows: float
    fillfactor: int | None


# Average stored width of each column from pg_stats. A column without statistics (never
# analyzed, or an index expression) makes the whole estimate unknown rather than wrong.
_TABLE_WIDTHS = sql.SQL(
    """
SELECT c.oid, bool_and(s.avg_width IS NOT NULL),
       coalesce(sum(s.avg_width * (1 - s.null_frac)), 0),
       coalesce(bool_or(s.null_frac > 0), false), count(*), c.reltuples,
       (SELECT option_value::int FROM pg_options_to_table(c.reloptions)
        WHERE option_name = 'fillfactor')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_stats s
  ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
 AND NOT s.inherited
WHERE c.relkind IN ('r', 'm') AND {user_relation}
GROUP BY c.oid
"""
).format(user_relation=_USER_RELATION)

_INDEX_WIDTHS = sql.SQL(
    """
SELECT i.indexrelid, bool_and(s.avg_width IS NOT NULL),
       coalesce(sum(s.avg_width * (1 - s.null_frac)), 0),
       coalesce(bool_or(s.null_frac > 0), false), count(*), t.reltuples,
       (SELECT option_value::int FROM pg_options_to_table(c.reloptions)
        WHERE option_name = 'fillfactor')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) AS k(attnum)
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0
LEFT JOIN pg_stats s
  ON s.schemaname = n.nspname AND s.tablename = t.relname AND s.attname = a.attname
 AND NOT s.inherited
WHERE c.relkind = 'i' AND {user_relation}
GROUP BY i.indexrelid, t.reltuples, c.reloptions
"""
).format(user_relation=_USER_RELATION)


def table_widths(connection: psycopg.Connection) -> dict[int, ColumnWidths]:
    """Column statistics of every user table, keyed by oid."""
    return {row[0]: ColumnWidths(*row) for row in connection.execute(_TABLE_WIDTHS).fetchall()}


def index_widths(connection: psycopg.Connection) -> dict[int, ColumnWidths]:
    """Column statistics of every user index's columns, keyed by index oid."""
    return {row[0]: ColumnWidths(*row) for row in connection.execute(_INDEX_WIDTHS).fetchall()}


def pgstatindex(connection: psycopg.Connection, schema: str, oid: int) -> dict | None:
    """pgstattuple's exact leaf figures for a btree index (reads the whole index).

    None if the index stayed locked past lock_timeout or the role may not read it.
    """
    query = sql.SQL(
        "SELECT index_size, leaf_pages, empty_pages, deleted_pages, avg_leaf_density"
        " FROM {}(%s::oid::regclass)"
    ).format(sql.Identifier(schema, "pgstatindex"))
    try:
        row = connection.execute(query, (oid,)).fetchone()
    except (errors.LockNotAvailable, errors.InsufficientPrivilege):
        return None
    assert row is not None
    keys = ("index_size", "leaf_pages", "empty_pages", "deleted_pages", "avg_leaf_density")
    return dict(zip(keys, row, strict=True))


def pgstattuple_approx(connection: psycopg.Connection, schema: str, oid: int) -> dict | None:
    """pgstattuple's free-space and dead-tuple figures of a table (skips all-visible pages).

    None if the table stayed locked past lock_timeout or the role may not read it.
    """
    query = sql.SQL(
        "SELECT table_len, approx_free_space, dead_tuple_len FROM {}(%s::oid::regclass)"
    ).format(sql.Identifier(schema, "pgstattuple_approx"))
    try:
        row = connection.execute(query, (oid,)).fetchone()
    except (errors.LockNotAvailable, errors.InsufficientPrivilege):
        return None
    assert row is not None
    return dict(zip(("table_len", "approx_free_space", "dead_tuple_len"), row, strict=True))
