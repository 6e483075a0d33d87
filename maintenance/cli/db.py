"""Tasks of the `db` namespace: targeted VACUUM/ANALYZE/REINDEX, reports, sessions, purge.

maintenance.db (and psycopg with it) is imported inside each plan: see common.py.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from ..errors import ConfigError
from ..executor import Procedure
from ..inventory import Host
from ..results import Result
from ..units import parse_size
from .spec import Flag, Plan, TaskSpec, collection, dry_run

DEFAULT_TOP = 20  # rows per database in the reports unless --top says otherwise

COLUMNS = ("database", "object", "action", "status", "note")
_SETTINGS = "postgres.maintenance"

DATABASE = Flag(
    "database",
    "work on this database only (repeatable; default: postgres.databases, "
    "else every connectable non-template database)",
    repeatable=True,
)
LOCK_TIMEOUT = Flag(
    "lock_timeout",
    f"skip an object whose lock is not granted within this (default: "
    f"{_SETTINGS}.lock_timeout, else 5s)",
)
STATEMENT_TIMEOUT = Flag(
    "statement_timeout",
    f"cancel a statement running longer than this (default: "
    f"{_SETTINGS}.statement_timeout, else 1h; 0 = no limit)",
)
TIMEOUTS = (LOCK_TIMEOUT, STATEMENT_TIMEOUT)


def _tables_flag(verb: str) -> Flag:
    return Flag(
        "table",
        f"{verb} this table, whatever its statistics (repeatable; schema.table, or a name in "
        "any schema); each database worked in must have it",
        repeatable=True,
    )


def _tables(flags: SimpleNamespace) -> tuple[str, ...]:
    """--table's names; with --all too, which of the two was meant is unclear: refused."""
    tables = tuple(flags.table or ())
    if tables and flags.all_:
        raise ConfigError("--table and --all exclude each other")
    if any(not name.strip(". ") for name in tables):
        raise ConfigError("--table: expected a table name, got an empty one")
    return tables
STATEMENTS = dry_run("print the exact statements that would run, and change nothing")


def _overrides(flags: SimpleNamespace, **settings: str) -> dict[str, Any]:
    """{setting: parsed value} for each flag given, passed as setting=flag name; the
    timeouts always."""
    from ..db import parse_flags

    named = {"lock_timeout": "lock_timeout", "statement_timeout": "statement_timeout", **settings}
    return parse_flags(
        **{
            setting: (flag.replace("_", "-"), getattr(flags, flag))
            for setting, flag in named.items()
        }
    )


def _validate(host: Host, options: Any) -> None:
    """Refuse, before work starts anywhere, a host without a DSN or whose vars the flags
    contradict (the vars themselves were checked when the inventory was loaded)."""
    from .. import pg
    from ..db import settings_for

    settings_for(host, options.overrides)
    pg.host_dsn(host)


def _plan(flags: SimpleNamespace, procedure: Procedure, options: Any) -> Plan:
    """What every db task runs: its procedure, printing the planned SQL on a dry run."""
    if getattr(flags, "dry_run", False) and not flags.json:
        procedure = _printing_statements(procedure)
    return Plan(procedure, options, validate=_validate, columns=COLUMNS)


_print_lock = threading.Lock()


def _printing_statements(procedure: Procedure) -> Procedure:
    """PROCEDURE, printing each host's planned statements (dry run on a terminal) as SQL.

    Hosts print from the executor's threads; once the reader has gone (`| head`) printing
    stops, and the hosts' results are still what they planned, not failures.
    """
    reader_gone = threading.Event()

    def wrapped(host: Host, runner: Any, options: Any) -> Result:
        result = procedure(host, runner, options)
        lines = []
        for database in result.details.get("databases", []):
            lines.append(f"-- {host.name}, database {database['database']}")
            lines += [f"{statement};" for statement in database["statements"]]
        if lines and not reader_gone.is_set():
            with _print_lock:
                try:
                    sys.stdout.write("\n".join(lines) + "\n\n")
                    sys.stdout.flush()
                except BrokenPipeError:
                    reader_gone.set()
        return result

    return wrapped


def _vacuum(flags: SimpleNamespace) -> Plan:
    from ..db import TableOptions, vacuum_host

    return _plan(flags, vacuum_host, TableOptions(
        databases=tuple(flags.database or ()),
        overrides=_overrides(
            flags,
            vacuum_dead_ratio="dead_ratio",
            vacuum_dead_tuples="dead_tuples",
            vacuum_min_dead_tuples="min_dead_tuples",
        ),
        dry_run=flags.dry_run,
        all_tables=flags.all_,
        full=flags.full,
        tables=_tables(flags),
    ))  # fmt: skip


def _analyze(flags: SimpleNamespace) -> Plan:
    from ..db import TableOptions, analyze_host

    return _plan(flags, analyze_host, TableOptions(
        databases=tuple(flags.database or ()),
        overrides=_overrides(
            flags,
            analyze_modified_ratio="modified_ratio",
            analyze_min_modifications="min_modifications",
        ),
        dry_run=flags.dry_run,
        all_tables=flags.all_,
        verbose=flags.verbose,
        tables=_tables(flags),
    ))  # fmt: skip


def _reindex(flags: SimpleNamespace) -> Plan:
    from ..db import ReindexOptions, reindex_host

    return _plan(flags, reindex_host, ReindexOptions(
        databases=tuple(flags.database or ()),
        overrides=_overrides(
            flags, reindex_bloat_ratio="bloat_ratio", reindex_min_size="min_size"
        ),
        dry_run=flags.dry_run,
        blocking=flags.blocking,
    ))  # fmt: skip


def _report(procedure_name: str) -> Callable[[SimpleNamespace], Plan]:
    """The plan of a report task (db.bloat, db.unused_indexes): read-only, --top rows."""

    def plan(flags: SimpleNamespace) -> Plan:
        from .. import db

        top = flags.top
        if not str(top).isdigit() or int(top) < 1:
            raise ConfigError(f"--top: expected a number of rows >= 1, got {top!r}")
        options = db.ReportOptions(
            databases=tuple(flags.database or ()),
            overrides=_overrides(flags),
            min_size=parse_size(flags.min_size, "--min-size"),
            top=int(top),
        )
        return _plan(flags, getattr(db, procedure_name), options)

    return plan


def _long_queries(flags: SimpleNamespace) -> Plan:
    from ..db import SessionOptions, long_queries_host

    if flags.cancel and flags.terminate:
        raise ConfigError("--cancel and --terminate exclude each other: choose one")
    return _plan(flags, long_queries_host, SessionOptions(
        overrides=_overrides(flags, long_query_age="older_than"),
        dry_run=flags.dry_run,
        action="cancel" if flags.cancel else "terminate" if flags.terminate else None,
        include_superusers=flags.include_superusers,
    ))  # fmt: skip


def _idle_connections(flags: SimpleNamespace) -> Plan:
    from ..db import SessionOptions, idle_connections_host

    return _plan(flags, idle_connections_host, SessionOptions(
        overrides=_overrides(flags, idle_age="older_than"),
        dry_run=flags.dry_run,
        action="terminate" if flags.terminate else None,
        include_superusers=flags.include_superusers,
        in_transaction_only=flags.in_transaction,
    ))  # fmt: skip


def _purge(flags: SimpleNamespace) -> Plan:
    from ..db import PurgeOptions, parse_flags, purge_host, rule_from_flags

    rule = None
    if flags.table:
        missing = [name for name, value in (("--column", flags.column),
                   ("--older-than", flags.older_than)) if not value]  # fmt: skip
        if missing:
            raise ConfigError(f"--table needs {' and '.join(missing)}")
        rule = rule_from_flags(
            table=flags.table, column=flags.column, older_than=flags.older_than,
            schema=flags.schema, database=flags.database,
        )  # fmt: skip
    elif flags.column or flags.older_than or flags.schema or flags.database:
        raise ConfigError("--column, --older-than, --schema and --database need --table")
    return _plan(flags, purge_host, PurgeOptions(
        overrides=_overrides(flags, purge_pause="pause"),
        dry_run=flags.dry_run,
        rule=rule,
        batch=parse_flags(purge_batch=("batch", flags.batch)).get("purge_batch"),
    ))  # fmt: skip


def _flag(name: str, setting: str, what: str, fallback: str) -> Flag:
    """A flag overriding `postgres.maintenance.SETTING`, with the default said in its help."""
    return Flag(name, f"{what} (default: {_SETTINGS}.{setting}, else {fallback})")


TOP = Flag("top", f"show at most this many rows per database (default {DEFAULT_TOP})", DEFAULT_TOP)
SUPERUSERS = Flag(
    "include_superusers", "also signal superusers' sessions (listed but left alone otherwise)",
    False,
)  # fmt: skip
SIGNALS = dry_run("print the statements that would signal each session, and signal none")

SPECS = (
    TaskSpec(
        "db.vacuum",
        """VACUUM (ANALYZE) only the tables whose dead tuples pass the thresholds.

        Each table is reported with dead tuples and size before and after. A table locked by
        someone else past lock_timeout is skipped and reported.
        """,
        flags=(
            DATABASE,
            Flag("all_", "vacuum every table, whatever its dead tuples", False),
            Flag("full", "VACUUM FULL: rewrites each table under an ACCESS EXCLUSIVE lock "
                 "(blocks reads and writes of that table while it runs)", False),
            STATEMENTS,
            _flag("dead_ratio", "vacuum_dead_ratio",
                  "vacuum a table whose dead tuples are at least this share of its rows", "0.1"),
            _flag("dead_tuples", "vacuum_dead_tuples",
                  "vacuum a table with at least this many dead tuples whatever the ratio",
                  "100000"),
            _flag("min_dead_tuples", "vacuum_min_dead_tuples",
                  "never vacuum a table with fewer dead tuples than this", "1000"),
            *TIMEOUTS,
            _tables_flag("vacuum"),
        ),
        plan=_vacuum,
    ),
    TaskSpec(
        "db.analyze",
        "ANALYZE only the tables whose statistics are stale (many rows changed since).",
        flags=(
            DATABASE,
            Flag("all_", "analyze every table, however fresh its statistics", False),
            Flag("verbose", "ANALYZE VERBOSE: keep the server's messages for each table in the "
                 "report", False),
            STATEMENTS,
            _flag("modified_ratio", "analyze_modified_ratio", "analyze a table whose rows changed "
                  "since its last analyze are at least this share of it", "0.1"),
            _flag("min_modifications", "analyze_min_modifications",
                  "never analyze a table with fewer changed rows than this", "1000"),
            *TIMEOUTS,
            _tables_flag("analyze"),
        ),
        plan=_analyze,
    ),
    TaskSpec(
        "db.reindex",
        """REINDEX INDEX CONCURRENTLY only the bloated btree indexes.

        Bloat comes from pgstattuple's pgstatindex where the extension is installed, else from
        an estimate based on statistics. Invalid indexes left by an interrupted concurrent
        rebuild (*_ccnew, *_ccold) are dropped before and after.
        """,
        flags=(
            DATABASE,
            STATEMENTS,
            _flag("bloat_ratio", "reindex_bloat_ratio", "rebuild an index whose estimated bloat "
                  "is at least this share of its size", "0.3"),
            _flag("min_size", "reindex_min_size", "leave indexes smaller than this alone", "10MB"),
            Flag("blocking", "plain REINDEX instead of CONCURRENTLY: blocks writes to the table "
                 "while each index is rebuilt", False),
            *TIMEOUTS,
        ),
        plan=_reindex,
    ),
    TaskSpec(
        "db.bloat",
        "Report estimated table and index bloat (wasted bytes and ratio), largest first.",
        flags=(
            DATABASE,
            Flag("min_size", "leave out relations smaller than this (default 1MB)", "1MB"),
            TOP,
            *TIMEOUTS,
        ),
        plan=_report("bloat_host"),
    ),
    TaskSpec(
        "db.unused_indexes",
        """Report indexes never scanned since the statistics reset, with their size.

        Indexes behind primary keys, unique or exclusion constraints are left out: they enforce
        rules even when no query reads them.
        """,
        flags=(
            DATABASE,
            Flag("min_size", "leave out indexes smaller than this (default: all)", "0"),
            TOP,
            *TIMEOUTS,
        ),
        plan=_report("unused_indexes_host"),
    ),
    TaskSpec(
        "db.long_queries",
        """List queries running longer than --older-than; with --cancel or --terminate, stop them.

        Never touches its own session, replication or autovacuum workers, and leaves superuser
        sessions alone unless --include-superusers is given.
        """,
        flags=(
            _flag("older_than", "long_query_age", "queries running longer than this count as "
                  "long", "5m"),
            Flag("cancel", "cancel each long query (pg_cancel_backend); the session stays", False),
            Flag("terminate", "terminate each long query's session (pg_terminate_backend)",
                 False),
            SUPERUSERS,
            SIGNALS,
            *TIMEOUTS,
        ),
        plan=_long_queries,
    ),
    TaskSpec(
        "db.idle_connections",
        """List sessions idle (or idle in transaction) past --older-than; --terminate ends them.

        The runbooks' fix for "connection pool exhausted". The same sessions are never touched
        as by db.long_queries: not its own, no background workers, no superusers unless asked.
        """,
        flags=(
            _flag("older_than", "idle_age", "sessions idle longer than this count", "10m"),
            Flag("in_transaction", "only sessions idle inside an open transaction (they hold "
                 "locks)", False),
            Flag("terminate", "terminate each of those sessions (pg_terminate_backend)", False),
            SUPERUSERS,
            SIGNALS,
            *TIMEOUTS,
        ),
        plan=_idle_connections,
    ),
    TaskSpec(
        "db.purge",
        """Delete old rows in batches with a pause between them, then VACUUM ANALYZE the table.

        With --table, --column and --older-than one table is purged; without, every rule of the
        host's postgres.maintenance.purge list.
        """,
        flags=(
            Flag("database", "database of --table (default: the host's one that holds it)"),
            Flag("schema", "schema of --table (default public)"),
            Flag("table", "purge this table (default: every rule in postgres.maintenance.purge)"),
            Flag("column", "date or timestamp column that says how old a row is"),
            Flag("older_than", "delete rows whose column is older than this: 90d, 12mo, 1y (a "
                 "bare number or a bare m is refused as ambiguous: write 12min or 12mo)"),
            Flag("batch", f"rows per DELETE (default: the rule's batch, {_SETTINGS}.purge_batch, "
                 "else 10000)"),
            _flag("pause", "purge_pause", "pause between batches", "0.5s"),
            dry_run("count the rows that would go and print the statements; delete nothing"),
            *TIMEOUTS,
        ),
        plan=_purge,
    ),
)

namespace = collection("db", SPECS)
