"""Run history in SQLite inside the state directory: the embedded default, one daemon at a time.

Only the daemon holding the directory's lock writes, so any row still 'running' under another
daemon's name belongs to a dead daemon.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .alerts import CheckState, Key
from .config import Job
from .lock import DaemonLock
from .state import (
    ABANDONED,
    RUNNING,
    SKIPPED,
    Claim,
    Outcome,
    RunRecord,
    StateError,
    daemon_identity,
    hosts_json,
)

DATABASE = "schedule.sqlite3"
LOCK_FILE = "schedule.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    job TEXT NOT NULL,
    task TEXT NOT NULL,
    slot TEXT NOT NULL,
    trigger TEXT NOT NULL,
    daemon TEXT NOT NULL,
    started TEXT,
    ended TEXT,
    status TEXT NOT NULL,
    hosts TEXT,
    error TEXT,
    UNIQUE (job, slot)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS alert_states (
    job TEXT NOT NULL,
    host TEXT NOT NULL,
    check_name TEXT NOT NULL,
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    alerted TEXT,
    message TEXT,
    PRIMARY KEY (job, host, check_name)
);
"""
_KEEP_ALERT_STATE = """
INSERT INTO alert_states (job, host, check_name, state, since, alerted, message)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (job, host, check_name) DO UPDATE SET state = excluded.state,
    since = excluded.since, alerted = excluded.alerted, message = excluded.message
"""

# A slot is free when nobody claimed it, when its run was abandoned, or when it is still
# 'running' under a daemon that is not this one (and therefore dead, thanks to the lock).
_CLAIM = """
INSERT INTO runs (job, task, slot, trigger, daemon, started, status)
VALUES (:job, :task, :slot, :trigger, :daemon, :now, 'running')
ON CONFLICT (job, slot) DO UPDATE SET
    trigger = excluded.trigger, daemon = excluded.daemon, started = excluded.started,
    ended = NULL, status = 'running', hosts = NULL, error = NULL
WHERE runs.status = 'abandoned' OR (runs.status = 'running' AND runs.daemon <> excluded.daemon)
RETURNING id
"""
_HISTORY = """
SELECT job, task, slot, trigger, daemon, started, ended, status, hosts, error FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY job ORDER BY slot DESC) AS position FROM runs
) WHERE position <= ? ORDER BY job, slot DESC
"""


class SqliteState:
    """History in STATE_DIR/schedule.sqlite3; LOCK takes the single-daemon lock first."""

    def __init__(self, state_dir: Path, *, lock: bool) -> None:
        self.daemon = daemon_identity()
        self._lock: DaemonLock | None = None
        self._mutex = threading.Lock()
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state directory {state_dir}: {exc.strerror}") from None
        if lock:
            self._lock = DaemonLock(state_dir / LOCK_FILE)
            self._lock.acquire()
        try:
            self._db = sqlite3.connect(
                state_dir / DATABASE, timeout=10, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.close()
            raise StateError(f"cannot open state database in {state_dir}: {exc}") from None

    def claim(self, job: Job, slot: datetime, trigger: str) -> Claim | None:
        params = {
            "job": job.name,
            "task": job.task,
            "slot": _text(slot),
            "trigger": trigger,
            "daemon": self.daemon,
            "now": _text(datetime.now(UTC)),
        }
        row = self._one(_CLAIM, params)
        return None if row is None else Claim(row[0], job.name, slot)

    def finish(self, claim: Claim, outcome: Outcome) -> None:
        self._execute(
            "UPDATE runs SET started = ?, ended = ?, status = ?, hosts = ?, error = ? WHERE id = ?",
            (
                _text(outcome.started),
                _text(outcome.ended),
                outcome.status,
                hosts_json(outcome),
                outcome.error,
                claim.run_id,
            ),
        )

    def record_skip(self, job: Job, slot: datetime, reason: str) -> None:
        now = _text(datetime.now(UTC))
        self._execute(
            "INSERT OR IGNORE INTO runs (job, task, slot, trigger, daemon, started, ended, status,"
            " error) VALUES (?, ?, ?, 'schedule', ?, ?, ?, ?, ?)",
            (job.name, job.task, _text(slot), self.daemon, now, now, SKIPPED, reason),
        )

    def missed(self, job: Job, slot: datetime) -> bool:
        ran_before = self._one(
            "SELECT 1 FROM runs WHERE job = ? AND slot < ?", (job.name, _text(slot))
        )
        handled = self._one(
            "SELECT 1 FROM runs WHERE job = ? AND slot = ? AND status <> ?",
            (job.name, _text(slot), ABANDONED),
        )
        return bool(ran_before) and not handled

    def abandon_orphans(self) -> list[tuple[str, datetime]]:
        rows = self._all(
            "UPDATE runs SET status = ?, ended = ?, error = 'daemon ' || daemon || ' stopped"
            " during the run' WHERE status = ? AND daemon <> ? RETURNING job, slot",
            (ABANDONED, _text(datetime.now(UTC)), RUNNING, self.daemon),
        )
        return [(job, _time(slot)) for job, slot in rows]

    def prune(self, before: datetime) -> int:
        with self._mutex:
            try:
                return self._db.execute(
                    "DELETE FROM runs WHERE started < ? AND status <> ?", (_text(before), RUNNING)
                ).rowcount
            except sqlite3.Error as exc:
                raise StateError(f"state database: {exc}") from None

    def history(self, per_job: int) -> list[RunRecord]:
        return [
            RunRecord(
                job=job,
                task=task,
                slot=_time(slot),
                trigger=trigger,
                daemon=daemon,
                started=_time(started) if started else None,
                ended=_time(ended) if ended else None,
                status=status,
                hosts=json.loads(hosts) if hosts else [],
                error=error,
            )
            for job, task, slot, trigger, daemon, started, ended, status, hosts, error in self._all(
                _HISTORY, (per_job,)
            )
        ]

    def alert_states(self, job: str) -> dict[Key, CheckState]:
        rows = self._all(
            "SELECT host, check_name, state, since, alerted, message FROM alert_states"
            " WHERE job = ?",
            (job,),
        )
        return {
            (host, check): CheckState(
                host, check, state, _time(since), _time(alerted) if alerted else None, message or ""
            )
            for host, check, state, since, alerted, message in rows
        }

    def keep_alert_states(self, job: str, states: Sequence[CheckState]) -> None:
        rows = [
            (job, kept.host, kept.check, kept.state, _text(kept.since),
             _text(kept.alerted) if kept.alerted else None, kept.message)
            for kept in states
        ]  # fmt: skip
        with self._mutex:
            try:
                with self._db:  # one transaction
                    self._db.execute("BEGIN")
                    self._db.executemany(_KEEP_ALERT_STATE, rows)
            except sqlite3.Error as exc:
                raise StateError(f"state database: {exc}") from None

    def close(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()
        if self._lock is not None:
            self._lock.release()

    def _execute(self, query: str, params: Any) -> None:
        self._all(query, params)

    def _one(self, query: str, params: Any) -> tuple | None:
        rows = self._all(query, params)
        return rows[0] if rows else None

    def _all(self, query: str, params: Any) -> list[tuple]:
        with self._mutex:
            try:
                return self._db.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state database: {exc}") from None


def _text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
