"""Running maintenance statements on one database, or only writing them down in a dry run.

A statement that cannot get its lock within lock_timeout is skipped, not waited on; any
other server error fails that one object and the run goes on with the next.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
import structlog
from psycopg import errors

from ..secrets import mask_text
from ..settings.postgres import MaintenanceSettings
from ..units import format_duration
from .statements import Statement

log = structlog.get_logger()


class Outcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    PLANNED = "planned"


@dataclass(frozen=True)
class Attempt:
    """What became of one statement: its outcome, why, and how long it took."""

    outcome: Outcome
    duration_s: float = 0.0
    reason: str | None = None
    messages: tuple[str, ...] = ()
    rows: tuple[tuple, ...] = ()
    rowcount: int = 0


def _describe(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    message = (diag.message_primary if diag else None) or str(exc)
    return mask_text(message.strip())


@dataclass
class StatementRunner:
    """Runs statements on CONNECTION (autocommit), recording their text for the report."""

    connection: psycopg.Connection
    settings: MaintenanceSettings
    dry_run: bool
    database: str
    statements: list[str] = field(default_factory=list)
    _notices: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.connection.add_notice_handler(self._notice)

    def _notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.message_primary:
            severity = diagnostic.severity_nonlocalized or ""
            self._notices.append((severity, mask_text(diagnostic.message_primary)))

    def lock_timeout_reason(self) -> str:
        seconds = self.settings.lock_timeout.total_seconds()
        within = f"{seconds:g}s" if seconds < 60 else format_duration(seconds)
        return f"could not lock within {within}"

    def run(self, statement: Statement) -> Attempt:
        """Run STATEMENT (or, in a dry run, only record it). Never raises for server errors.

        The server's messages come back with the attempt; a WARNING that it skipped the
        object (VACUUM of a table the role does not own) makes the attempt SKIPPED.
        """
        text = statement.text(self.connection)
        if not self.statements or self.statements[-1] != text:
            self.statements.append(text)
        if self.dry_run:
            return Attempt(Outcome.PLANNED)
        self._notices.clear()
        started = time.monotonic()
        rows: tuple[tuple[Any, ...], ...] = ()
        outcome, reason, rowcount = Outcome.DONE, None, 0
        try:
            cursor = self.connection.execute(statement.query, statement.params)
            rows = tuple(cursor.fetchall()) if cursor.description else ()
            rowcount = max(0, cursor.rowcount)
        except errors.LockNotAvailable:
            outcome, reason = Outcome.SKIPPED, self.lock_timeout_reason()
        except errors.QueryCanceled as exc:
            outcome, reason = Outcome.FAILED, f"cancelled: {_describe(exc)}"
        except psycopg.Error as exc:
            outcome, reason = Outcome.FAILED, _describe(exc)
        duration = time.monotonic() - started
        skipped = [m for severity, m in self._notices if severity == "WARNING" and "skipping" in m]
        if outcome == Outcome.DONE and skipped:
            outcome, reason = Outcome.SKIPPED, skipped[0]
        messages = tuple(message for _, message in self._notices)
        attempt = Attempt(outcome, duration, reason, messages, rows, rowcount)
        log.info(
            "statement",
            database=self.database,
            statement=text,
            outcome=str(attempt.outcome),
            duration_s=round(attempt.duration_s, 3),
            reason=attempt.reason,
        )
        return attempt
