"""SQL jobs: one statement in one transaction, bounded by timeouts and by max_rows.

The transaction is committed only when the statement succeeded, changed at most max_rows
rows and this is not a dry run; in every other case it is rolled back, so a dry run reports
exactly the rows the real run would change, and a statement that would change too many
changes none.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import pg
from ..inventory import Host
from ..results import Result, Status
from ..runners import Runner
from ..secrets import mask_text
from ..settings.durations import duration_words
from ..settings.jobs import Job

if TYPE_CHECKING:
    import psycopg

# SET LOCAL, as a query that takes parameters: both limits end with the transaction.
_LIMITS = (
    "SELECT set_config('statement_timeout', %(statement)s, true),"
    " set_config('lock_timeout', %(lock)s, true)"
)
# Command tags of statements that read rather than change: their rows are returned, not changed.
_READING = frozenset({"SELECT", "SHOW", "FETCH", "EXPLAIN"})


class _RolledBack(Exception):
    """The transaction was rolled back, for the reason given."""


def run_sql_job(host: Host, runner: Runner, job: Job, dry_run: bool) -> Result:
    """Run JOB's statement on HOST's server (through its SSH tunnel if configured).

    details.rows is the rows the statement changed (or would change, or returned for a SELECT).
    """
    assert job.sql is not None
    details: dict[str, Any] = {
        "job": job.name,
        "kind": "sql",
        "sql": job.sql,
        "dry_run": dry_run,
        "max_rows": job.max_rows,
        "statement_timeout": duration_words(job.statement_timeout),
        "lock_timeout": duration_words(job.lock_timeout),
    }
    with (
        pg.reach(host, runner, "job.run") as server,
        server.connect(job.database, autocommit=False) as connection,
    ):
        details["database"] = connection.info.dbname
        try:
            rows, tag = _execute(connection, job)
            details.update(rows=rows, command=tag)
            _finish(connection, job, rows, tag, dry_run)
        except _RolledBack as exc:
            return Result(host.name, Status.FAILED, details, error=f"{exc}: rolled back")
    summary = f"{_verb(tag, done=not dry_run)} {_rows(rows)} in {details['database']}"
    if dry_run:
        return Result(host.name, Status.OK, details, summary=f"{summary} (dry run: rolled back)")
    changed = rows > 0 and tag not in _READING
    return Result(host.name, Status.CHANGED if changed else Status.OK, details, summary=summary)


def _execute(connection: psycopg.Connection, job: Job) -> tuple[int, str]:
    """Run the statement under the job's limits. Return its row count and command tag.

    Raise _RolledBack, after rolling back, for an error, a timeout or several statements.
    """
    import psycopg

    try:
        with connection.cursor() as cursor:
            cursor.execute(
                _LIMITS,
                {
                    "statement": _milliseconds(job.statement_timeout),
                    "lock": _milliseconds(job.lock_timeout),
                },
            )
            cursor.execute(job.sql or "", job.parameters)  # values bound, never formatted in
            rows, tag = max(cursor.rowcount, 0), (cursor.statusmessage or "").partition(" ")[0]
            several = cursor.nextset()
    except psycopg.Error as exc:
        _roll_back(connection)
        raise _RolledBack(_why(exc, job)) from None
    if several:
        _roll_back(connection)
        raise _RolledBack("the sql holds several statements; a job runs one")
    return rows, tag


def _finish(connection: psycopg.Connection, job: Job, rows: int, tag: str, dry_run: bool) -> None:
    """Commit, or roll back a dry run; roll back and raise _RolledBack past max_rows."""
    import psycopg

    if rows > job.max_rows:
        _roll_back(connection)
        raise _RolledBack(
            f"{_verb(tag, done=False)} {_rows(rows)}, more than max_rows {job.max_rows}"
        )
    if dry_run:
        _roll_back(connection)
        return
    try:
        connection.commit()
    except psycopg.Error as exc:  # a deferred constraint, a serialization failure
        raise _RolledBack(f"commit failed: {_message(exc)}") from None


def _roll_back(connection: psycopg.Connection) -> None:
    """Roll back; a connection that broke has no transaction left to roll back (the server
    rolls it back when the session ends), and its error is the one worth reporting."""
    import psycopg

    with contextlib.suppress(psycopg.Error):
        connection.rollback()


def _why(exc: psycopg.Error, job: Job) -> str:
    """What stopped the statement, in the job's own terms where a limit did."""
    from psycopg import errors

    if isinstance(exc, errors.LockNotAvailable):
        return f"a lock was not granted within lock_timeout ({duration_words(job.lock_timeout)})"
    if isinstance(exc, errors.QueryCanceled) and "statement timeout" in str(exc):
        return f"cancelled by statement_timeout ({duration_words(job.statement_timeout)})"
    return _message(exc)


def _message(exc: Exception) -> str:
    return mask_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _milliseconds(limit: timedelta) -> str:
    return f"{round(limit.total_seconds() * 1000)}ms"


def _verb(tag: str, *, done: bool) -> str:
    if tag in _READING:
        return "returned" if done else "would return"
    return "changed" if done else "would change"


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"
