"""db.purge: delete rows older than a cutoff in small batches, then VACUUM ANALYZE the table.

Each batch is its own short transaction, with a pause between batches, so locks are held
briefly and replicas keep up; the cutoff is fixed once at the start so the run ends.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from .. import pg
from ..errors import MaintError
from ..inventory import Host
from ..results import Result
from ..runners import Runner
from ..settings.postgres import MaintenanceSettings, PurgeRule
from ..units import format_size
from . import catalog, statements
from .execution import Attempt, Outcome, StatementRunner
from .outcome import DatabaseRun, host_result, qualified
from .server import Server, open_server
from .settings import settings_for

TIME_TYPES = frozenset({"date", "timestamp without time zone", "timestamp with time zone"})

_TARGET = """
SELECT c.oid, c.relkind, format_type(a.atttypid, NULL)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a
  ON a.attrelid = c.oid AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %(schema)s AND c.relname = %(table)s
"""
_EXISTS = """
SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(table)s
"""


@dataclass(frozen=True)
class PurgeOptions:
    """Flags of db.purge: one rule from the command line, or None for the host's own rules."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    rule: PurgeRule | None = None
    batch: int | None = None


def purge_host(host: Host, runner: Runner, options: PurgeOptions) -> Result:
    """Apply the flag's rule, or every purge rule of HOST's vars, database by database."""
    settings = settings_for(host, options.overrides)
    rules = (options.rule,) if options.rule else settings.purge
    if not rules:
        return host_result(host, [], noun="rules", summary="no purge rules for this host")
    runs = []
    with open_server(host, runner, "db.purge", settings) as server:
        if options.rule is not None and options.rule.database is None:
            rules = (_located(server, options.rule),)
        by_database: dict[str | None, list[PurgeRule]] = {}
        for rule in rules:
            by_database.setdefault(rule.database, []).append(rule)
        for database, group in by_database.items():

            def work(executor: StatementRunner, run: DatabaseRun, group=group) -> None:
                for rule in group:
                    batch = options.batch or rule.batch or settings.purge_batch
                    _purge(executor, run, rule, batch, settings)

            runs.append(server.work_in(database, options.dry_run, work))
    return host_result(host, runs, noun="tables")


def _located(server: Server, rule: PurgeRule) -> PurgeRule:
    """RULE (from `--table` without `--database`) in the one database of the host that holds
    its table, as the runbooks write `db.purge --table events`: the DSN's database is rarely
    the application's. Raise MaintError naming the candidates when none or several hold it.
    """
    name = qualified(rule.schema_name, rule.table)
    candidates = server.databases()
    holding: list[str] = []
    unreadable: list[str] = []
    for database in candidates:
        try:
            with server.connect(database) as connection:
                found = connection.execute(
                    _EXISTS, {"schema": rule.schema_name, "table": rule.table}
                )
                if found.fetchone():
                    holding.append(database)
        except (pg.DatabaseError, psycopg.Error):
            unreadable.append(database)
    if len(holding) > 1:
        raise MaintError(
            f"table {name} exists in several databases: {', '.join(holding)}; "
            "choose one with --database"
        )
    if not holding:
        unread = f" (could not look in {', '.join(unreadable)})" if unreadable else ""
        raise MaintError(f"table {name} not found in any of {', '.join(candidates)}{unread}")
    return rule.model_copy(update={"database": holding[0]})


def _purge(
    executor: StatementRunner,
    run: DatabaseRun,
    rule: PurgeRule,
    batch: int,
    settings: MaintenanceSettings,
) -> None:
    connection = executor.connection
    name = qualified(rule.schema_name, rule.table)
    figures: dict[str, Any] = {
        "schema": rule.schema_name,
        "table": rule.table,
        "column": rule.column,
        "older_than": rule.older_than.text,
        "older_than_words": rule.older_than.words(),
        "batch": batch,
    }
    target = connection.execute(
        _TARGET, {"schema": rule.schema_name, "table": rule.table, "column": rule.column}
    ).fetchone()
    problem = _target_problem(target, rule)
    if problem or target is None:
        run.add(name, "purge", Outcome.FAILED, problem or "table not found", **figures)
        return
    oid = int(target[0])
    cutoff = _cutoff(connection, rule)
    figures["cutoff"] = cutoff.isoformat()
    said = f"older than {rule.older_than.words()}, before {cutoff:%Y-%m-%d %H:%M} UTC"
    size_before = catalog.table_size(connection, oid)
    if size_before is None:
        run.add(name, "purge", Outcome.SKIPPED, executor.lock_timeout_reason(), **figures)
        return
    figures["size_before"] = size_before
    delete = statements.purge_batch(rule.schema_name, rule.table, rule.column, cutoff, batch)
    if executor.dry_run:
        counting = statements.purge_count(rule.schema_name, rule.table, rule.column, cutoff)
        old, total = connection.execute(counting.query, counting.params).fetchone() or (0, 0)
        executor.run(delete)
        executor.run(statements.vacuum(rule.schema_name, rule.table))
        note = f"{said}: would delete {_grouped(old)} of {_grouped(total)} rows"
        note += f" ({_grouped(batch)} a batch)"
        figures.update(rows_to_delete=old, rows_total=total)
        run.add(name, "purge", Outcome.PLANNED, note, **figures)
        return
    deleted, batches, stopped = _delete_in_batches(executor, delete, batch, settings.purge_pause)
    row = run.add(
        name,
        "purge",
        stopped.outcome if stopped else Outcome.DONE,
        "",
        rows_deleted=deleted,
        batches=batches,
        **figures,
    )
    row["changed"] = deleted > 0
    notes = [f"{said}: deleted {_grouped(deleted)} rows in {batches} batches"]
    if stopped:
        notes.append(f"stopped: {stopped.reason}")
    if deleted:
        notes.append(_vacuum_after(executor, row, rule, oid))
    row["note"] = "; ".join(notes)


def _cutoff(connection: Any, rule: PurgeRule) -> datetime:
    """The server's now() minus the rule's age, in UTC; months counted on the calendar.

    Fixed once per table at the start, so a long purge ends instead of chasing the clock.
    """
    row = connection.execute("SELECT now()").fetchone()
    assert row is not None
    return rule.older_than.before(row[0].astimezone(UTC))


def _grouped(number: int) -> str:
    """82286 -> '82 286': digits grouped as the runbooks write them."""
    return f"{number:,}".replace(",", " ")


def _target_problem(target: tuple | None, rule: PurgeRule) -> str | None:
    """Why TARGET (oid, relkind, column type) cannot be purged by RULE, if it cannot."""
    if target is None:
        return "table not found"
    _, kind, column_type = target
    if kind == "p":
        return "is partitioned: detach or drop its old partitions instead"
    if kind != "r":
        return "is not a table"
    if column_type is None:
        return f"has no column {rule.column!r}"
    if column_type not in TIME_TYPES:
        return f"column {rule.column!r} is {column_type}; purge needs a date or timestamp column"
    return None


def _delete_in_batches(
    executor: StatementRunner, delete: statements.Statement, batch: int, pause: timedelta
) -> tuple[int, int, Attempt | None]:
    """Run DELETE until a batch comes back short. Return rows, batches and the stopping attempt."""
    deleted = batches = 0
    while True:
        attempt = executor.run(delete)
        if attempt.outcome != Outcome.DONE:
            return deleted, batches, attempt
        if attempt.rowcount:
            deleted += attempt.rowcount
            batches += 1
        if attempt.rowcount < batch:
            return deleted, batches, None
        time.sleep(pause.total_seconds())


def _vacuum_after(executor: StatementRunner, row: dict[str, Any], rule: PurgeRule, oid: int) -> str:
    attempt = executor.run(statements.vacuum(rule.schema_name, rule.table))
    if attempt.outcome != Outcome.DONE:
        row["vacuum"] = str(attempt.outcome)
        if attempt.outcome == Outcome.FAILED:
            row["status"] = Outcome.FAILED
        return f"VACUUM ANALYZE {attempt.outcome}: {attempt.reason}"
    after = catalog.table_stats(executor.connection, oid)
    size_after = catalog.table_size(executor.connection, oid)
    row.update(
        vacuum="done",
        dead_tuples_after=after[0].dead_tuples if after else None,
        size_after=size_after,
    )
    return f"vacuumed, size {format_size(row['size_before'])} -> " + (
        format_size(size_after) if size_after is not None else "?"
    )
