"""db.long_queries and db.idle_connections: list sessions, and cancel or terminate on request.

Only client backends are considered: replication senders, autovacuum and other background
workers never appear. The task's own session is left out, and superuser sessions are listed
but never signalled unless asked for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from psycopg import sql

from ..inventory import Host
from ..results import Result
from ..runners import Runner
from ..units import format_duration
from . import statements
from .execution import Outcome, StatementRunner
from .outcome import REPORTED, DatabaseRun, host_result
from .server import on_server
from .settings import settings_for

QUERY_CHARS = 200
ACTIONS = ("cancel", "terminate")
_IDLE_STATES = ("idle", "idle in transaction", "idle in transaction (aborted)")
_IN_TRANSACTION = _IDLE_STATES[1:]
_ACTIVE_STATES = ("active", "fastpath function call")


@dataclass(frozen=True)
class SessionOptions:
    """Flags of db.long_queries and db.idle_connections."""

    overrides: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    action: str | None = None
    include_superusers: bool = False
    in_transaction_only: bool = False


@dataclass(frozen=True)
class Session:
    """One client session as pg_stat_activity shows it."""

    pid: int
    backend_start: Any
    since: Any
    state: str
    database: str | None
    user: str | None
    application: str
    client: str | None
    seconds: float
    query: str
    superuser: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "application": self.application,
            "client": self.client,
            "state": self.state,
            "duration_s": round(self.seconds, 1),
            "query": self.query,
            "superuser": self.superuser,
        }


# {since} is query_start (long queries) or state_change (idle sessions).
_SESSIONS = """
SELECT a.pid, a.backend_start, a.{since}, a.state, a.datname, a.usename, a.application_name,
       a.client_addr::text, extract(epoch FROM clock_timestamp() - a.{since})::float8,
       a.query, coalesce(r.rolsuper, false)
FROM pg_stat_activity a
LEFT JOIN pg_roles r ON r.oid = a.usesysid
WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
  AND a.state = ANY(%(states)s) AND a.{since} < clock_timestamp() - %(age)s::interval
ORDER BY a.{since}
"""


def find_sessions(
    executor: StatementRunner, since: str, states: tuple[str, ...], age: timedelta
) -> list[Session]:
    """Client sessions (not this one) in one of STATES since longer than AGE."""
    query = sql.SQL(_SESSIONS).format(since=sql.Identifier(since))
    rows = executor.connection.execute(query, {"states": list(states), "age": age}).fetchall()
    names = [field.name for field in fields(Session)]  # the query's columns, in order
    return [Session(**{**dict(zip(names, row, strict=True)), "query": _shorten(row[9])})
            for row in rows]  # fmt: skip


def _shorten(query: str | None) -> str:
    text = " ".join((query or "").split())
    return text if len(text) <= QUERY_CHARS else text[: QUERY_CHARS - 3] + "..."


def _act_on(
    executor: StatementRunner,
    run: DatabaseRun,
    sessions: list[Session],
    since: str,
    options: SessionOptions,
) -> None:
    for session in sessions:
        label = f"pid {session.pid}"
        figures = {"database": session.database, **session.to_dict()}
        described = f"{session.state} for {format_duration(session.seconds)}: {session.query}"
        if options.action is None:
            run.add(label, "list", REPORTED, described, **figures)
            continue
        if session.superuser and not options.include_superusers:
            note = "superuser session: left alone without --include-superusers"
            run.add(label, options.action, Outcome.SKIPPED, note, **figures)
            continue
        attempt = executor.run(
            statements.signal_session(
                options.action,
                session.pid,
                session.backend_start,
                since,
                session.since,
                session.state,
            )
        )
        outcome, note = attempt.outcome, attempt.reason or described
        if outcome == Outcome.DONE and not any(row[0] for row in attempt.rows):
            outcome, note = Outcome.SKIPPED, "session ended or moved on before it was signalled"
        run.add(label, options.action, outcome, note, **figures)


def long_queries_host(host: Host, runner: Runner, options: SessionOptions) -> Result:
    """Queries running longer than `long_query_age`; cancelled or terminated on request."""
    settings = settings_for(host, options.overrides)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        found = find_sessions(executor, "query_start", _ACTIVE_STATES, settings.long_query_age)
        _act_on(executor, run, found, "query_start", options)

    run = on_server(host, runner, "db.long_queries", settings, dry_run=options.dry_run, work=work)
    older = format_duration(settings.long_query_age.total_seconds())
    return _result(host, run, f"queries running over {older}", older)


def idle_connections_host(host: Host, runner: Runner, options: SessionOptions) -> Result:
    """Sessions idle (or idle in transaction) longer than `idle_age`; terminated on request."""
    settings = settings_for(host, options.overrides)
    states = _IN_TRANSACTION if options.in_transaction_only else _IDLE_STATES

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        found = find_sessions(executor, "state_change", states, settings.idle_age)
        _act_on(executor, run, found, "state_change", options)

    run = on_server(
        host, runner, "db.idle_connections", settings, dry_run=options.dry_run, work=work
    )
    older = format_duration(settings.idle_age.total_seconds())
    return _result(host, run, f"sessions idle over {older}", older)


def _result(host: Host, run: DatabaseRun, what: str, older: str) -> Result:
    """'2 queries running over 5m', then what became of them when acted on."""
    counts = Counter(str(row["status"]) for row in run.rows)
    acted = ", ".join(f"{count} {status}" for status, count in counts.items() if status != REPORTED)
    summary = f"{len(run.rows)} {what}" + (f": {acted}" if acted else "")
    return host_result(host, [run], noun=what, summary=summary, older_than=older)
