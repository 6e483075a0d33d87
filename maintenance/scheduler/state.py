"""Run history and claims: what the daemon records, behind one interface for two databases.

Each run of a job is one row keyed by (job, slot), the slot being the scheduled time it runs
for. Inserting that row is the claim: it succeeds once per slot, so several daemons sharing a
PostgreSQL state database run each due job exactly once. A row still 'running' whose daemon is
gone is abandoned; a later claim of the same slot takes it over.
Beside the runs, the last state of each (job, host, check) and when it was last alerted
(alerts.py), so alerts go out on changes, across restarts and whichever daemon ran the job.
Both stores create their tables with CREATE TABLE IF NOT EXISTS when they open: a state
database of an earlier version gains the alert table at the first start, and has no schema
version to migrate.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import MaintError

if TYPE_CHECKING:
    from .alerts import CheckState, Key
    from .config import Job, Settings

RUNNING, OK, FAILED, SKIPPED, ABANDONED = "running", "ok", "failed", "skipped", "abandoned"
COMPLETED = (OK, FAILED)


class StateError(MaintError):
    """The state database cannot be read or written."""


@dataclass(frozen=True)
class Claim:
    """A slot this daemon won: the row to finish."""

    run_id: int
    job: str
    slot: datetime


@dataclass
class Outcome:
    """How one run went: the job's status and each host's result from the task's JSON."""

    status: str
    started: datetime
    ended: datetime
    hosts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def duration_s(self) -> float:
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class RunRecord:
    """One row of history, as schedule.status shows it."""

    job: str
    task: str
    slot: datetime
    trigger: str
    daemon: str
    started: datetime | None
    ended: datetime | None
    status: str
    hosts: list[dict[str, Any]]
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "task": self.task,
            "slot": _iso(self.slot),
            "trigger": self.trigger,
            "daemon": self.daemon,
            "started": _iso(self.started),
            "ended": _iso(self.ended),
            "duration_s": (
                round((self.ended - self.started).total_seconds(), 3)
                if self.started and self.ended
                else None
            ),
            "status": self.status,
            "hosts": self.hosts,
            "error": self.error,
        }


class StateStore(Protocol):
    """What the daemon and schedule.status need from a state database."""

    daemon: str

    def claim(self, job: Job, slot: datetime, trigger: str) -> Claim | None:
        """Claim JOB's run for SLOT; None when a live daemon claimed it or it is done, or when
        another daemon still runs an earlier slot of JOB."""

    def finish(self, claim: Claim, outcome: Outcome) -> None:
        """Record how a claimed run ended."""

    def record_skip(self, job: Job, slot: datetime, reason: str) -> None:
        """Record that SLOT was not run (the previous run was still going)."""

    def missed(self, job: Job, slot: datetime) -> bool:
        """True when JOB ran before but has no completed run for SLOT (catch-up is due)."""

    def abandon_orphans(self) -> list[tuple[str, datetime]]:
        """Mark runs of dead daemons abandoned; return their (job, slot) pairs."""

    def prune(self, before: datetime) -> int:
        """Forget runs that started before BEFORE; return how many."""

    def history(self, per_job: int) -> list[RunRecord]:
        """The latest PER_JOB runs of every job, newest first within a job."""

    def alert_states(self, job: str) -> dict[Key, CheckState]:
        """The states kept for JOB's hosts and checks, by (host, check)."""

    def keep_alert_states(self, job: str, states: Sequence[CheckState]) -> None:
        """Store STATES of JOB, replacing the kept ones of the same (host, check)."""

    def close(self) -> None: ...


def daemon_identity() -> str:
    """Who runs: 'host:pid', written into every row this daemon claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def hosts_json(outcome: Outcome) -> str:
    """The hosts' results for history, without their details (kept small; metrics use them)."""
    return json.dumps(history_hosts(outcome), default=str)


def history_hosts(outcome: Outcome) -> list[dict[str, Any]]:
    return [{k: v for k, v in host.items() if k != "details"} for host in outcome.hosts]


def open_state(settings: Settings, *, daemon: bool) -> StateStore:
    """The state store the settings name: PostgreSQL with state_dsn, else SQLite in state_dir.

    DAEMON asks for the single-daemon lock on SQLite state (raises StateError naming the
    running daemon); readers such as schedule.status pass False.
    """
    if settings.state_dsn:
        from .state_postgres import PostgresState

        return PostgresState(settings.state_dsn)
    from .state_sqlite import SqliteState

    return SqliteState(settings.state_dir, lock=daemon)


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
