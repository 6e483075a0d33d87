"""Tasks of the `db` namespace: targeted VACUUM/ANALYZE/REINDEX, reports, sessions, purge."""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from invoke import Collection, Task
from invoke.exceptions import Exit

from ..errors import ConfigError
from ..executor import DEFAULT_FORKS, Procedure
from ..inventory import Host
from ..reporting import EXIT_USAGE
from ..results import Result
from ..units import parse_size
from .common import run_task, task_help
from .common import task as common_task

if TYPE_CHECKING:
    from ..db import ReportOptions

# maintenance.db (and psycopg with it) is imported inside each task: see common.py.
DEFAULT_TOP = 20  # rows per database in the reports unless --top says otherwise

COLUMNS = ("database", "object", "action", "status", "note")
_SETTINGS = "postgres.maintenance"

DB_HELP = {
    "database": "work on this database only (repeatable; default: postgres.databases, "
    "else every connectable non-template database)",
    "lock_timeout": f"skip an object whose lock is not granted within this (default: "
    f"{_SETTINGS}.lock_timeout, else 5s)",
    "statement_timeout": f"cancel a statement running longer than this (default: "
    f"{_SETTINGS}.statement_timeout, else 1h; 0 = no limit)",
    "dry_run": "print the exact statements that would run, and change nothing",
}


def _parsed(build: Callable[[], Any]) -> Any:
    """BUILD's options, or exit 2 with the message if a flag is bad."""
    try:
        return build()
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None


def _overrides(**flags: tuple[str, Any]) -> dict[str, Any]:
    """{setting: parsed value} for each flag given, passed as setting=(flag, raw value)."""
    from ..db import parse_flags

    return parse_flags(**flags)


def _timeouts(lock_timeout: Any, statement_timeout: Any) -> dict[str, tuple[str, Any]]:
    return {
        "lock_timeout": ("lock-timeout", lock_timeout),
        "statement_timeout": ("statement-timeout", statement_timeout),
    }


def _validate(host: Host, options: Any) -> None:
    """Refuse, before work starts anywhere, a host without a DSN or whose vars the flags
    contradict (the vars themselves were checked when the inventory was loaded)."""
    from .. import pg
    from ..db import settings_for

    settings_for(host, options.overrides)
    pg.host_dsn(host)


def task(name: str, **kwargs: Any) -> Callable[[Callable], Task]:
    """invoke's @task for a db task whose body returns (procedure, build its options).

    The body keeps the flags' signature, which invoke reads through functools.wraps; the
    wrapper does what every db task does with them: build the options (a bad flag exits 2),
    run over the selected hosts, and print the planned statements on a dry run.
    """

    def decorate(body: Callable[..., tuple[Procedure, Callable[[], Any]]]) -> Task:
        signature = inspect.signature(body)

        @functools.wraps(body)
        def run(c: Any, *args: Any, **kwargs: Any) -> None:
            flags = signature.bind(c, *args, **kwargs)
            flags.apply_defaults()
            procedure, build = body(c, *args, **kwargs)
            given = flags.arguments
            if given.get("dry_run") and not given["json"]:
                procedure = _printing_statements(procedure)
            run_task(
                f"db.{name}",
                procedure,
                _parsed(build),
                inventory=given["inventory"],
                limit=given["limit"],
                json=given["json"],
                forks=given["forks"],
                columns=COLUMNS,
                validate=_validate,
            )

        return common_task(name=name, **kwargs)(run)

    return decorate


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


@task(
    "vacuum",
    help=task_help(
        **DB_HELP,
        all="vacuum every table, whatever its dead tuples",
        full="VACUUM FULL: rewrites each table under an ACCESS EXCLUSIVE lock (blocks reads "
        "and writes of that table while it runs)",
        dead_ratio="vacuum a table whose dead tuples are at least this share of its rows "
        f"(default: {_SETTINGS}.vacuum_dead_ratio, else 0.1)",
        dead_tuples="vacuum a table with at least this many dead tuples whatever the ratio "
        f"(default: {_SETTINGS}.vacuum_dead_tuples, else 100000)",
        min_dead_tuples="never vacuum a table with fewer dead tuples than this "
        f"(default: {_SETTINGS}.vacuum_min_dead_tuples, else 1000)",
    ),
    iterable=["database"],
)
def vacuum(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    all_=False,
    full=False,
    dry_run=False,
    dead_ratio=None,
    dead_tuples=None,
    min_dead_tuples=None,
    lock_timeout=None,
    statement_timeout=None,
):
    """VACUUM (ANALYZE) only the tables whose dead tuples pass the thresholds.

    Each table is reported with dead tuples and size before and after. A table locked by
    someone else past lock_timeout is skipped and reported.
    """
    from ..db import TableOptions, vacuum_host

    return vacuum_host, lambda: TableOptions(
        databases=tuple(database or ()),
        overrides=_overrides(
            **_timeouts(lock_timeout, statement_timeout),
            vacuum_dead_ratio=("dead-ratio", dead_ratio),
            vacuum_dead_tuples=("dead-tuples", dead_tuples),
            vacuum_min_dead_tuples=("min-dead-tuples", min_dead_tuples),
        ),
        dry_run=dry_run,
        all_tables=all_,
        full=full,
    )


@task(
    "analyze",
    help=task_help(
        **DB_HELP,
        all="analyze every table, however fresh its statistics",
        verbose="ANALYZE VERBOSE: keep the server's messages for each table in the report",
        modified_ratio="analyze a table whose rows changed since its last analyze are at least "
        f"this share of it (default: {_SETTINGS}.analyze_modified_ratio, else 0.1)",
        min_modifications="never analyze a table with fewer changed rows than this "
        f"(default: {_SETTINGS}.analyze_min_modifications, else 1000)",
    ),
    iterable=["database"],
)
def analyze(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    all_=False,
    verbose=False,
    dry_run=False,
    modified_ratio=None,
    min_modifications=None,
    lock_timeout=None,
    statement_timeout=None,
):
    """ANALYZE only the tables whose statistics are stale (many rows changed since)."""
    from ..db import TableOptions, analyze_host

    return analyze_host, lambda: TableOptions(
        databases=tuple(database or ()),
        overrides=_overrides(
            **_timeouts(lock_timeout, statement_timeout),
            analyze_modified_ratio=("modified-ratio", modified_ratio),
            analyze_min_modifications=("min-modifications", min_modifications),
        ),
        dry_run=dry_run,
        all_tables=all_,
        verbose=verbose,
    )


@task(
    "reindex",
    help=task_help(
        **DB_HELP,
        bloat_ratio="rebuild an index whose estimated bloat is at least this share of its size "
        f"(default: {_SETTINGS}.reindex_bloat_ratio, else 0.3)",
        min_size=f"leave indexes smaller than this alone (default: {_SETTINGS}.reindex_min_size, "
        "else 10MB)",
        blocking="plain REINDEX instead of CONCURRENTLY: blocks writes to the table while each "
        "index is rebuilt",
    ),
    iterable=["database"],
)
def reindex(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    dry_run=False,
    bloat_ratio=None,
    min_size=None,
    blocking=False,
    lock_timeout=None,
    statement_timeout=None,
):
    """REINDEX INDEX CONCURRENTLY only the bloated btree indexes.

    Bloat comes from pgstattuple's pgstatindex where the extension is installed, else from
    an estimate based on statistics. Invalid indexes left by an interrupted concurrent rebuild
    (*_ccnew, *_ccold) are dropped before and after.
    """
    from ..db import ReindexOptions, reindex_host

    return reindex_host, lambda: ReindexOptions(
        databases=tuple(database or ()),
        overrides=_overrides(
            **_timeouts(lock_timeout, statement_timeout),
            reindex_bloat_ratio=("bloat-ratio", bloat_ratio),
            reindex_min_size=("min-size", min_size),
        ),
        dry_run=dry_run,
        blocking=blocking,
    )


def _report_options(
    database: Any, min_size: Any, top: Any, lock_timeout: Any, statement_timeout: Any
) -> ReportOptions:
    from ..db import ReportOptions

    if not str(top).isdigit() or int(top) < 1:
        raise ConfigError(f"--top: expected a number of rows >= 1, got {top!r}")
    return ReportOptions(
        databases=tuple(database or ()),
        overrides=_overrides(**_timeouts(lock_timeout, statement_timeout)),
        min_size=parse_size(min_size, "--min-size"),
        top=int(top),
    )


REPORT_HELP = {
    "database": DB_HELP["database"],
    "lock_timeout": DB_HELP["lock_timeout"],
    "statement_timeout": DB_HELP["statement_timeout"],
    "top": f"show at most this many rows per database (default {DEFAULT_TOP})",
}


@task(
    "bloat",
    help=task_help(**REPORT_HELP, min_size="leave out relations smaller than this (default 1MB)"),
    iterable=["database"],
)
def bloat(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    min_size="1MB",
    top=DEFAULT_TOP,
    lock_timeout=None,
    statement_timeout=None,
):
    """Report estimated table and index bloat (wasted bytes and ratio), largest first."""
    from ..db import bloat_host

    return bloat_host, lambda: _report_options(
        database, min_size, top, lock_timeout, statement_timeout
    )


@task(
    "unused_indexes",
    help=task_help(**REPORT_HELP, min_size="leave out indexes smaller than this (default: all)"),
    iterable=["database"],
)
def unused_indexes(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    min_size="0",
    top=DEFAULT_TOP,
    lock_timeout=None,
    statement_timeout=None,
):
    """Report indexes never scanned since the statistics reset, with their size.

    Indexes behind primary keys, unique or exclusion constraints are left out: they enforce
    rules even when no query reads them.
    """
    from ..db import unused_indexes_host

    return unused_indexes_host, lambda: _report_options(
        database, min_size, top, lock_timeout, statement_timeout
    )


SESSION_HELP = {
    "include_superusers": "also signal superusers' sessions (listed but left alone otherwise)",
    "dry_run": "print the statements that would signal each session, and signal none",
    "lock_timeout": DB_HELP["lock_timeout"],
    "statement_timeout": DB_HELP["statement_timeout"],
}


@task(
    "long_queries",
    help=task_help(
        **SESSION_HELP,
        older_than="queries running longer than this count as long "
        f"(default: {_SETTINGS}.long_query_age, else 5m)",
        cancel="cancel each long query (pg_cancel_backend); the session stays",
        terminate="terminate each long query's session (pg_terminate_backend)",
    ),
)
def long_queries(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    older_than=None,
    cancel=False,
    terminate=False,
    include_superusers=False,
    dry_run=False,
    lock_timeout=None,
    statement_timeout=None,
):
    """List queries running longer than --older-than; with --cancel or --terminate, stop them.

    Never touches its own session, replication or autovacuum workers, and leaves superuser
    sessions alone unless --include-superusers is given.
    """
    from ..db import SessionOptions, long_queries_host

    def build() -> SessionOptions:
        if cancel and terminate:
            raise ConfigError("--cancel and --terminate exclude each other: choose one")
        return SessionOptions(
            overrides=_overrides(
                **_timeouts(lock_timeout, statement_timeout),
                long_query_age=("older-than", older_than),
            ),
            dry_run=dry_run,
            action="cancel" if cancel else "terminate" if terminate else None,
            include_superusers=include_superusers,
        )

    return long_queries_host, build


@task(
    "idle_connections",
    help=task_help(
        **SESSION_HELP,
        older_than="sessions idle longer than this count "
        f"(default: {_SETTINGS}.idle_age, else 10m)",
        in_transaction="only sessions idle inside an open transaction (they hold locks)",
        terminate="terminate each of those sessions (pg_terminate_backend)",
    ),
)
def idle_connections(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    older_than=None,
    in_transaction=False,
    terminate=False,
    include_superusers=False,
    dry_run=False,
    lock_timeout=None,
    statement_timeout=None,
):
    """List sessions idle (or idle in transaction) past --older-than; --terminate ends them.

    The runbooks' fix for "connection pool exhausted". The same sessions are never touched
    as by db.long_queries: not its own, no background workers, no superusers unless asked.
    """
    from ..db import SessionOptions, idle_connections_host

    return idle_connections_host, lambda: SessionOptions(
        overrides=_overrides(
            **_timeouts(lock_timeout, statement_timeout),
            idle_age=("older-than", older_than),
        ),
        dry_run=dry_run,
        action="terminate" if terminate else None,
        include_superusers=include_superusers,
        in_transaction_only=in_transaction,
    )


@task(
    "purge",
    help=task_help(
        database="database of --table (default: the one in postgres.dsn)",
        schema="schema of --table (default public)",
        table="purge this table (default: every rule in postgres.maintenance.purge)",
        column="date or timestamp column that says how old a row is",
        older_than="delete rows whose column is older than this: 90d, 12mo, 1y (a bare number "
        "or a bare m is refused as ambiguous: write 12min or 12mo)",
        batch=f"rows per DELETE (default: the rule's batch, {_SETTINGS}.purge_batch, else 10000)",
        pause=f"pause between batches (default: {_SETTINGS}.purge_pause, else 0.5s)",
        dry_run="count the rows that would go and print the statements; delete nothing",
        lock_timeout=DB_HELP["lock_timeout"],
        statement_timeout=DB_HELP["statement_timeout"],
    ),
)
def purge(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    schema=None,
    table=None,
    column=None,
    older_than=None,
    batch=None,
    pause=None,
    dry_run=False,
    lock_timeout=None,
    statement_timeout=None,
):
    """Delete old rows in batches with a pause between them, then VACUUM ANALYZE the table.

    With --table, --column and --older-than one table is purged; without, every rule of the
    host's postgres.maintenance.purge list.
    """
    from ..db import PurgeOptions, purge_host, rule_from_flags

    def build() -> PurgeOptions:
        rule = None
        if table:
            missing = [
                flag
                for flag, value in (("--column", column), ("--older-than", older_than))
                if not value
            ]
            if missing:
                raise ConfigError(f"--table needs {' and '.join(missing)}")
            rule = rule_from_flags(
                table=table, column=column, older_than=older_than, schema=schema, database=database
            )
        elif column or older_than or schema or database:
            raise ConfigError("--column, --older-than, --schema and --database need --table")
        return PurgeOptions(
            overrides=_overrides(
                **_timeouts(lock_timeout, statement_timeout), purge_pause=("pause", pause)
            ),
            dry_run=dry_run,
            rule=rule,
            batch=_overrides(purge_batch=("batch", batch)).get("purge_batch"),
        )

    return purge_host, build


namespace = Collection(
    "db",
    vacuum,
    analyze,
    reindex,
    bloat,
    unused_indexes,
    long_queries,
    idle_connections,
    purge,
)
