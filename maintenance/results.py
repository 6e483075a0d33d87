"""What a procedure returns for one host, and the statuses the executor reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"


@dataclass
class Result:
    """One host's outcome. `summary` is the one-line text shown in the table."""

    host: str
    status: Status
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    summary: str = ""
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "status": str(self.status),
            "duration_s": round(self.duration_s, 3),
            "summary": self.summary,
            "details": self.details,
            "error": self.error,
        }
