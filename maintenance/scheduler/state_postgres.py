"""Run history in PostgreSQL (`state_dsn`), shared by several daemons for high availability.

Each daemon holds a session advisory lock under a key of its own for as long as it lives and
writes that key into the rows it claims. PostgreSQL drops the lock when the daemon's session
ends, however the daemon died, so "still running and its owner's lock is gone" identifies an
abandoned run without clocks or timeouts. Claims are one INSERT ... ON CONFLICT on the unique
(job, slot) key: of several daemons racing for a slot exactly one gets the row back.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg.types.json import Jsonb

from ..secrets import mask_text
from .alerts import CheckState, Key
from .config import Job
from .state import (
    RUNNING,
    SKIPPED,
    Claim,
    Outcome,
    RunRecord,
    StateError,
    daemon_identity,
    history_hosts,
)

LOCK_SPACE = 0x6D61696E  # 'main': the first key of every daemon's liveness lock
APPLICATION_NAME = "maint schedule"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS maint_schedule_runs (
    id bigserial PRIMARY KEY,
    job text NOT NULL,
    task text NOT NULL,
    slot timestamptz NOT NULL,
    trigger text NOT NULL,
    daemon text NOT NULL,
    owner_lock bigint,
    started timestamptz,
    ended timestamptz,
    status text NOT NULL,
    hosts jsonb,
    error text,
    UNIQUE (job, slot)
);
CREATE INDEX IF NOT EXISTS maint_schedule_runs_started ON maint_schedule_runs (started);
CREATE TABLE IF NOT EXISTS maint_schedule_alerts (
    job text NOT NULL,
    host text NOT NULL,
    check_name text NOT NULL,
    state text NOT NULL,
    since timestamptz NOT NULL,
    alerted timestamptz,
    message text,
    PRIMARY KEY (job, host, check_name)
);
"""
_KEEP_ALERT_STATE = """
INSERT INTO maint_schedule_alerts (job, host, check_name, state, since, alerted, message)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (job, host, check_name) DO UPDATE SET state = excluded.state,
    since = excluded.since, alerted = excluded.alerted, message = excluded.message
"""
# A claim succeeds when no row holds the slot, or its row was abandoned, or its owner is dead
# (no session holds the advisory lock whose key the row carries); and when no other daemon is
# still running an earlier slot of the same job (that overlap is skipped, as within a daemon).
_CLAIM = """
INSERT INTO maint_schedule_runs AS runs
    (job, task, slot, trigger, daemon, owner_lock, started, status)
SELECT %(job)s, %(task)s, %(slot)s, %(trigger)s, %(daemon)s, %(owner)s, now(), 'running'
WHERE NOT EXISTS (
    SELECT 1 FROM maint_schedule_runs AS busy
    WHERE busy.job = %(job)s AND busy.slot <> %(slot)s AND busy.status = 'running'
    AND EXISTS (
        SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
        AND classid = %(space)s::oid AND objid::bigint = busy.owner_lock))
ON CONFLICT (job, slot) DO UPDATE SET
    trigger = excluded.trigger, daemon = excluded.daemon, owner_lock = excluded.owner_lock,
    started = excluded.started, ended = NULL, status = 'running', hosts = NULL, error = NULL
WHERE runs.status = 'abandoned' OR (runs.status = 'running' AND NOT EXISTS (
    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
    AND classid = %(space)s::oid AND objid::bigint = runs.owner_lock))
RETURNING id
"""
_ABANDON = """
UPDATE maint_schedule_runs AS runs SET status = 'abandoned', ended = now(),
    error = 'daemon ' || daemon || ' stopped during the run'
WHERE status = 'running' AND NOT EXISTS (
    SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
    AND classid = %(space)s::oid AND objid::bigint = runs.owner_lock)
RETURNING job, slot
"""
_MISSED = """
SELECT EXISTS (SELECT 1 FROM maint_schedule_runs WHERE job = %(job)s AND slot < %(slot)s)
AND NOT EXISTS (SELECT 1 FROM maint_schedule_runs
                WHERE job = %(job)s AND slot = %(slot)s AND status <> 'abandoned')
"""
_HISTORY = """
SELECT job, task, slot, trigger, daemon, started, ended, status, hosts, error FROM (
    SELECT *, row_number() OVER (PARTITION BY job ORDER BY slot DESC) AS position
    FROM maint_schedule_runs
) AS ranked WHERE position <= %s ORDER BY job, slot DESC
"""


class PostgresState:
    """History and claims in the database of DSN; one connection, serialised by a mutex."""

    def __init__(self, dsn: str) -> None:
        self.daemon = daemon_identity()
        self._dsn = dsn
        self._mutex = threading.Lock()
        self._owner = 0
        self._db = self._connect()

    def claim(self, job: Job, slot: datetime, trigger: str) -> Claim | None:
        params = {
            "job": job.name,
            "task": job.task,
            "slot": slot,
            "trigger": trigger,
            "daemon": self.daemon,
            "owner": self._owner,
            "space": LOCK_SPACE,
        }
        row = self._one(_CLAIM, params)
        return None if row is None else Claim(row[0], job.name, slot)

    def finish(self, claim: Claim, outcome: Outcome) -> None:
        self._all(
            "UPDATE maint_schedule_runs SET started = %s, ended = %s, status = %s, hosts = %s,"
            " error = %s WHERE id = %s",
            (
                outcome.started,
                outcome.ended,
                outcome.status,
                Jsonb(history_hosts(outcome)),
                outcome.error,
                claim.run_id,
            ),
        )

    def record_skip(self, job: Job, slot: datetime, reason: str) -> None:
        self._all(
            "INSERT INTO maint_schedule_runs (job, task, slot, trigger, daemon, started, ended,"
            " status, error) VALUES (%s, %s, %s, 'schedule', %s, now(), now(), %s, %s)"
            " ON CONFLICT (job, slot) DO NOTHING",
            (job.name, job.task, slot, self.daemon, SKIPPED, reason),
        )

    def missed(self, job: Job, slot: datetime) -> bool:
        row = self._one(_MISSED, {"job": job.name, "slot": slot})
        return bool(row and row[0])

    def abandon_orphans(self) -> list[tuple[str, datetime]]:
        return [(job, slot) for job, slot in self._all(_ABANDON, {"space": LOCK_SPACE})]

    def prune(self, before: datetime) -> int:
        with self._mutex:
            cursor = self._run(
                "DELETE FROM maint_schedule_runs WHERE started < %s AND status <> %s",
                (before, RUNNING),
            )
            return cursor.rowcount

    def history(self, per_job: int) -> list[RunRecord]:
        return [
            RunRecord(
                job=job,
                task=task,
                slot=slot,
                trigger=trigger,
                daemon=daemon,
                started=started,
                ended=ended,
                status=status,
                hosts=hosts or [],
                error=error,
            )
            for job, task, slot, trigger, daemon, started, ended, status, hosts, error in self._all(
                _HISTORY, (per_job,)
            )
        ]

    def alert_states(self, job: str) -> dict[Key, CheckState]:
        rows = self._all(
            "SELECT host, check_name, state, since, alerted, message FROM maint_schedule_alerts"
            " WHERE job = %s",
            (job,),
        )
        return {
            (host, check): CheckState(host, check, state, since, alerted, message or "")
            for host, check, state, since, alerted, message in rows
        }

    def keep_alert_states(self, job: str, states: Sequence[CheckState]) -> None:
        rows = [
            (job, kept.host, kept.check, kept.state, kept.since, kept.alerted, kept.message)
            for kept in states
        ]
        with self._mutex:
            for row in rows:  # upserts: one that is repeated after a reconnect does no harm
                self._run(_KEEP_ALERT_STATE, row)

    def close(self) -> None:
        self._db.close()

    def _connect(self) -> psycopg.Connection:
        """Connect, create the schema once, and take (or take back) this daemon's live lock."""
        try:
            db = psycopg.connect(
                self._dsn, autocommit=True, application_name=APPLICATION_NAME, connect_timeout=10
            )
            with db.transaction():
                # Serialise CREATE ... IF NOT EXISTS between daemons starting together.
                db.execute("SELECT pg_advisory_xact_lock(%s::int, 0)", (LOCK_SPACE,))
                db.execute(_SCHEMA)
            # After a reconnect, take back the same key: the rows this daemon runs carry it.
            if not (self._owner and _try_lock(db, self._owner)):
                self._owner = _new_owner_lock(db)
        except psycopg.Error as exc:
            raise StateError(f"state database: {mask_text(str(exc)).strip()}") from None
        return db

    def _one(self, query: LiteralString, params: Any) -> tuple | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _all(self, query: LiteralString, params: Any) -> list[tuple]:
        with self._mutex:
            cursor = self._run(query, params)
            return cursor.fetchall() if cursor.description is not None else []

    def _run(self, query: LiteralString, params: Any) -> psycopg.Cursor:
        """Execute with one reconnect: a restarted server must not stop the daemon for good.

        QUERY is a LiteralString, as psycopg's execute() asks: only the module's own SQL."""
        for attempt in (1, 2):
            try:
                return self._db.execute(query, params)
            except psycopg.OperationalError as exc:
                if attempt == 2 or not self._db.closed:
                    raise StateError(f"state database: {mask_text(str(exc)).strip()}") from None
                self._db = self._connect()
            except psycopg.Error as exc:
                raise StateError(f"state database: {mask_text(str(exc)).strip()}") from None
        raise AssertionError("unreachable")


def _new_owner_lock(db: psycopg.Connection) -> int:
    """Take a liveness lock under a random key no other daemon holds; return the key."""
    while True:
        key = 1 + secrets.randbelow(2**31 - 2)
        if _try_lock(db, key):
            return key


def _try_lock(db: psycopg.Connection, key: int) -> bool:
    row = db.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", (LOCK_SPACE, key)).fetchone()
    return bool(row and row[0])
