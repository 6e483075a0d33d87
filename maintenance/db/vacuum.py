"""db.vacuum and db.analyze: only the tables whose statistics say they need it.

The runbooks' blanket `VACUUM ANALYZE;` walks every table; here the dead-tuple and
modification counters pick the few that matter, each reported with before/after figures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from .. import pg
from ..inventory import Host
from ..results import Result
from ..runners import Runner
from ..settings.postgres import MaintenanceSettings
from ..tablenames import UnknownTable, resolve_tables
from ..units import format_size
from . import catalog, statements
from .execution import Outcome, StatementRunner
from .outcome import DatabaseRun, host_result, qualified
from .server import each_database
from .settings import settings_for

log = structlog.get_logger()

FULL_WARNING = (
    "VACUUM FULL rewrites each table under an ACCESS EXCLUSIVE lock: "
    "reads and writes of that table wait until it is done"
)


@dataclass(frozen=True)
class TableOptions:
    """Flags of db.vacuum and db.analyze."""

    databases: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    all_tables: bool = False
    full: bool = False
    verbose: bool = False
    tables: tuple[str, ...] = ()  # --table: these, in each database worked in, always


Reason = Callable[[catalog.TableStats, MaintenanceSettings], str | None]


def vacuum_reason(table: catalog.TableStats, settings: MaintenanceSettings) -> str | None:
    """Why TABLE needs a VACUUM, or None when its dead tuples stay under the thresholds."""
    dead = table.dead_tuples
    if dead < settings.vacuum_min_dead_tuples or dead == 0:
        return None
    if dead >= settings.vacuum_dead_tuples or table.dead_ratio >= settings.vacuum_dead_ratio:
        return f"{dead} dead tuples ({table.dead_ratio:.0%})"
    return None


def analyze_reason(table: catalog.TableStats, settings: MaintenanceSettings) -> str | None:
    """Why TABLE needs an ANALYZE, or None when its statistics are still fresh enough."""
    changed = table.modified_since_analyze
    if changed < settings.analyze_min_modifications or changed == 0:
        return None
    rows = table.estimated_rows if table.estimated_rows >= 0 else table.live_tuples
    if changed < settings.analyze_modified_ratio * rows:
        return None
    never = ", never analyzed" if table.last_analyzed is None else ""
    return f"{changed} rows changed since last analyze{never}"


def vacuum_host(host: Host, runner: Runner, options: TableOptions) -> Result:
    """VACUUM (ANALYZE) the tables of HOST's databases that pass the dead-tuple thresholds."""
    settings = settings_for(host, options.overrides)
    if options.full:
        log.warning("vacuum full", host=host.name, warning=FULL_WARNING)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        tables = _by_dead_tuples(catalog.table_stats(executor.connection))
        for table, reason in _chosen(tables, options, vacuum_reason, settings, run):
            _vacuum_table(executor, run, table, reason, full=options.full)

    runs = each_database(
        host,
        runner,
        "db.vacuum",
        settings,
        dry_run=options.dry_run,
        requested=options.databases,
        work=work,
    )
    facts = {"warning": FULL_WARNING} if options.full else {}
    return host_result(host, runs, noun="tables", **facts)


def _chosen(
    tables: list[catalog.TableStats],
    options: TableOptions,
    reason_of: Reason,
    settings: MaintenanceSettings,
    run: DatabaseRun,
) -> list[tuple[catalog.TableStats, str]]:
    """The tables to work on, each with why: the --table ones, else every one with --all,
    else those REASON_OF picks. A --table name this database lacks (or has twice, in two
    schemas) fails the database before any statement runs in it."""
    if not options.tables:
        picked = [(t, "--all" if options.all_tables else reason_of(t, settings)) for t in tables]
        return [(table, reason) for table, reason in picked if reason]
    by_name = {(table.schema, table.name): table for table in tables}
    try:
        wanted = resolve_tables(options.tables, by_name, f"database {run.name}")
    except UnknownTable as exc:
        raise pg.DatabaseError(str(exc)) from None
    return [(by_name[name], "--table") for name in wanted]


def _by_dead_tuples(tables: list[catalog.TableStats]) -> list[catalog.TableStats]:
    """Worst first, so the tables that matter most are done before any timeout."""
    return sorted(tables, key=lambda table: table.dead_tuples, reverse=True)


def _vacuum_table(
    executor: StatementRunner,
    run: DatabaseRun,
    table: catalog.TableStats,
    reason: str,
    *,
    full: bool,
) -> None:
    connection = executor.connection
    name = qualified(table.schema, table.name)
    action = "vacuum full" if full else "vacuum"
    before = {"schema": table.schema, "table": table.name, "dead_tuples_before": table.dead_tuples}
    size_before = catalog.table_size(connection, table.oid)
    if size_before is None:
        run.add(name, action, Outcome.SKIPPED, executor.lock_timeout_reason(), **before)
        return
    attempt = executor.run(statements.vacuum(table.schema, table.name, full=full))
    row = run.add(
        name,
        action,
        attempt.outcome,
        attempt.reason or reason,
        **before,
        size_before=size_before,
        duration_s=round(attempt.duration_s, 3),
    )
    if attempt.outcome != Outcome.DONE:
        return
    after = catalog.table_stats(connection, table.oid)
    size_after = catalog.table_size(connection, table.oid)
    dead_after = after[0].dead_tuples if after else None
    row.update(dead_tuples_after=dead_after, size_after=size_after)
    row["note"] = (
        f"dead tuples {table.dead_tuples} -> {dead_after}, "
        f"size {format_size(size_before)} -> {_size_text(size_after)}, "
        f"{attempt.duration_s:.1f}s"
    )


def _size_text(size: int | None) -> str:
    return format_size(size) if size is not None else "unknown (locked)"


def analyze_host(host: Host, runner: Runner, options: TableOptions) -> Result:
    """ANALYZE the tables of HOST's databases whose statistics are stale (or all with --all)."""
    settings = settings_for(host, options.overrides)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        tables = catalog.table_stats(executor.connection)
        tables.sort(key=lambda table: table.modified_since_analyze, reverse=True)
        for table, reason in _chosen(tables, options, analyze_reason, settings, run):
            _analyze_table(executor, run, table, reason, verbose=options.verbose)

    runs = each_database(
        host,
        runner,
        "db.analyze",
        settings,
        dry_run=options.dry_run,
        requested=options.databases,
        work=work,
    )
    return host_result(host, runs, noun="tables")


def _analyze_table(
    executor: StatementRunner,
    run: DatabaseRun,
    table: catalog.TableStats,
    reason: str,
    *,
    verbose: bool,
) -> None:
    attempt = executor.run(statements.analyze(table.schema, table.name, verbose=verbose))
    row = run.add(
        qualified(table.schema, table.name),
        "analyze",
        attempt.outcome,
        attempt.reason or reason,
        schema=table.schema,
        table=table.name,
        modified_before=table.modified_since_analyze,
        last_analyzed_before=table.last_analyzed,
        duration_s=round(attempt.duration_s, 3),
    )
    if verbose:
        row["messages"] = list(attempt.messages)
    if attempt.outcome == Outcome.DONE:
        after = catalog.table_stats(executor.connection, table.oid)
        row["modified_after"] = after[0].modified_since_analyze if after else None
        row["note"] = (
            f"{table.modified_since_analyze} changed rows -> {row['modified_after']}, "
            f"{attempt.duration_s:.1f}s"
        )
