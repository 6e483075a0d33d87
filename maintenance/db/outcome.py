"""One host's outcome of a db task: a row per object, a section per database, one Result.

Rows are flat dicts (database, object, action, status, note, figures) so the table printer
and `--json` users read the same thing; `changed` says whether the row altered anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..inventory import Host
from ..results import Result, Status
from .execution import Outcome

REPORTED = "reported"
MAX_ERRORS_SHOWN = 3


@dataclass
class DatabaseRun:
    """What happened in one database: its rows, the statements sent, or why it failed."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    error: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def add(
        self, object_name: str, action: str, status: str, note: str = "", **figures: Any
    ) -> dict[str, Any]:
        """Append a row and return it (callers may add figures measured afterwards)."""
        row = {
            "database": self.name,
            "object": object_name,
            "action": action,
            "status": status,
            "changed": status == Outcome.DONE,
            "note": note,
            **figures,
        }
        self.rows.append(row)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.name,
            "error": self.error,
            "statements": self.statements,
            **self.facts,
        }


def qualified(schema: str, name: str) -> str:
    """A name as people read it: schema.name, quoted only where it needs to be."""
    return ".".join(_quote_if_needed(part) for part in (schema, name))


def _quote_if_needed(part: str) -> str:
    plain = part.isidentifier() and part == part.lower() and part.isascii()
    return part if plain else '"' + part.replace('"', '""') + '"'


def host_result(
    host: Host,
    runs: list[DatabaseRun],
    *,
    noun: str,
    summary: str | None = None,
    **facts: Any,
) -> Result:
    """The host's Result: failed on any error, changed when a row changed something, else ok.

    NOUN names what rows count ("tables", "indexes"); SUMMARY replaces the default counts.
    """
    rows = [row for run in runs for row in run.rows]
    failures = [f"{run.name}: {run.error}" for run in runs if run.error] + [
        f"{row['database']}: {row['object']}: {row['note']}"
        for row in rows
        if row["status"] == Outcome.FAILED
    ]
    if failures:
        status = Status.FAILED
    elif any(row["changed"] for row in rows):
        status = Status.CHANGED
    else:
        status = Status.OK
    text = summary if summary is not None else count_summary(rows, noun, len(runs))
    error = None
    if failures:
        shown = "; ".join(failures[:MAX_ERRORS_SHOWN])
        more = len(failures) - MAX_ERRORS_SHOWN
        error = shown + (f" (and {more} more)" if more > 0 else "")
    return Result(
        host.name,
        status,
        details={"rows": rows, "databases": [run.to_dict() for run in runs], **facts},
        summary=text,
        error=error,
    )


def count_summary(rows: list[dict[str, Any]], noun: str, databases: int) -> str:
    """'3 tables done, 1 skipped in 2 databases', or 'nothing to do in 2 databases'."""
    where = f"in {databases} database{'s' if databases != 1 else ''}"
    if not rows:
        return f"no {noun} needed it {where}"
    counts = Counter(str(row["status"]) for row in rows)
    order = [Outcome.DONE, Outcome.PLANNED, Outcome.SKIPPED, Outcome.FAILED, REPORTED]
    parts = [f"{counts[str(status)]} {status}" for status in order if counts[str(status)]]
    return f"{noun}: " + ", ".join(parts) + f" {where}"
