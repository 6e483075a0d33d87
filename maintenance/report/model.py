"""The report's data: one row per (host, database or source), judged green, amber or red.

Pure data and rules, no store or state database: collect.py fills the rows from what backups,
drills and the scheduler recorded, html.py draws them, and `--json` prints `to_dict()`.
The colour says whether the thing can be restored: a complete backup within `rpo` (else red),
and a passing drill within `drill_max_age` and `rto` (else amber). Maintenance runs and check
states are shown beside and never change it: health.check is the alerting command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..monitoring import State
from ..units import format_duration

OK, WARNING, CRITICAL = "ok", "warning", "critical"
TREND_LENGTH = 30  # backups drawn in a row's sparklines


@dataclass(frozen=True)
class Objectives:
    """What a row is judged against: the host's `report` settings."""

    rpo: timedelta
    drill_max_age: timedelta
    rto: timedelta | None = None


@dataclass(frozen=True)
class BackupPoint:
    """One complete backup: when it was taken, its stored size, how long it took."""

    time: datetime
    key: str
    size: int
    duration_s: float | None  # None: its manifest could not be read


@dataclass(frozen=True)
class Drill:
    """One drill record (`<key>.verify.json`): when it finished, whether it passed."""

    time: datetime
    backup_key: str
    passed: bool
    restore_time_s: float | None
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """A database (or backup source) of a host and everything the report says about it."""

    host: str
    groups: tuple[str, ...]
    name: str
    kind: str  # postgres, or the source's kind (sqlite, redis ...)
    objectives: Objectives
    trend: tuple[BackupPoint, ...] = ()  # oldest first; the last is the newest backup
    last_drill: Drill | None = None  # the newest drill, passed or not
    last_passed: Drill | None = None  # the newest passing drill
    unreadable: str | None = None  # why the host's stores could not be read (nothing is known)

    @property
    def backup(self) -> BackupPoint | None:
        return self.trend[-1] if self.trend else None

    def judge(self, now: datetime) -> tuple[str, list[str]]:
        """The row's state (ok, warning, critical) and the reasons for it, in sentences."""
        if self.unreadable is not None:
            return CRITICAL, [f"The backups could not be read: {self.unreadable}."]
        reasons = self._backup_reasons(now)
        if reasons:
            return CRITICAL, reasons + self._drill_reasons(now)
        reasons = self._drill_reasons(now)
        return (WARNING, reasons) if reasons else (OK, [self._all_well(now)])

    def within_rpo(self, now: datetime) -> bool:
        """Whether a complete backup is younger than the RPO at NOW."""
        return self.backup is not None and not self._backup_reasons(now)

    def _backup_reasons(self, now: datetime) -> list[str]:
        backup, rpo = self.backup, self.objectives.rpo
        if backup is None:
            return ["Never backed up: no complete backup in the store."]
        age = _age(now, backup.time)
        if age > rpo:
            return [
                f"The newest complete backup is {_words(age)} old, over the RPO of {_words(rpo)}."
            ]
        return []

    def _drill_reasons(self, now: datetime) -> list[str]:
        passed, last = self.last_passed, self.last_drill
        reasons = []
        if last is not None and not last.passed:
            why = f": {last.reasons[0]}" if last.reasons else ""
            reasons.append(f"The newest drill ({_stamp(last.time)}) failed{why}.")
        if passed is None:
            reasons.append("Never drilled: no restore drill has passed.")
            return reasons
        age, limit = _age(now, passed.time), self.objectives.drill_max_age
        if age > limit:
            reasons.append(
                f"The newest passing drill is {_words(age)} old, over the limit of {_words(limit)}."
            )
        rto = self.objectives.rto
        restore = passed.restore_time_s
        if rto is not None and restore is not None and restore > rto.total_seconds():
            reasons.append(f"The restore took {_seconds(restore)}, over the RTO of {_words(rto)}.")
        return reasons

    def _all_well(self, now: datetime) -> str:
        assert self.backup is not None and self.last_passed is not None
        text = (
            f"Backed up {_words(_age(now, self.backup.time))} ago, drill passed "
            f"{_words(_age(now, self.last_passed.time))} ago"
        )
        if self.last_passed.restore_time_s is not None:
            text += f", restored in {_seconds(self.last_passed.restore_time_s)}"
        return text + "."

    def to_dict(self, now: datetime) -> dict[str, Any]:
        state, reasons = self.judge(now)
        backup = self.backup
        return {
            "host": self.host,
            "groups": list(self.groups),
            "name": self.name,
            "kind": self.kind,
            "state": state,
            "reasons": reasons,
            "backup": _point(backup, now) if backup else None,
            "trend": [_point(point, now) for point in self.trend],
            "drill": _drill(self.last_passed, now) if self.last_passed else None,
            "last_drill": _drill(self.last_drill, now) if self.last_drill else None,
            "rpo_s": self.objectives.rpo.total_seconds(),
            "drill_max_age_s": self.objectives.drill_max_age.total_seconds(),
            "rto_s": self.objectives.rto.total_seconds() if self.objectives.rto else None,
        }


@dataclass(frozen=True)
class Run:
    """A maintenance task's last run on a host, from the scheduler's history."""

    task: str
    job: str
    status: str
    started: datetime | None
    duration_s: float | None


@dataclass(frozen=True)
class CheckState:
    """A check's last state on a host, as the scheduler keeps it for alerts."""

    check: str
    state: str
    since: datetime
    message: str = ""


@dataclass(frozen=True)
class Maintenance:
    """What the scheduler recorded of one host: last run per task, check states."""

    runs: tuple[Run, ...] = ()
    checks: tuple[CheckState, ...] = ()


@dataclass(frozen=True)
class Report:
    """The whole report: when it was made, its rows, and the scheduler's records (None when
    no state store holds any)."""

    generated: datetime
    rows: tuple[Row, ...]
    maintenance: dict[str, Maintenance] | None = None
    problems: tuple[str, ...] = field(default=())  # stores that could not be read, by host

    def states(self) -> list[tuple[Row, str, list[str]]]:
        return [(row, *row.judge(self.generated)) for row in self.rows]

    def summary(self) -> dict[str, Any]:
        """Counts over rows and the sentence at the top of the page."""
        judged = self.states()
        counts = {state: sum(s == state for _, s, _ in judged) for state in (OK, WARNING, CRITICAL)}
        within = sum(row.within_rpo(self.generated) for row in self.rows)
        never_backed = sum(row.backup is None and row.unreadable is None for row in self.rows)
        never_drilled = sum(row.last_passed is None and row.unreadable is None for row in self.rows)
        total = len(self.rows)
        text = f"{within} of {total} databases within RPO"
        if never_backed:
            text += f", {never_backed} never backed up"
        if never_drilled:
            text += f", {never_drilled} never drilled"
        elif total and not self.problems:
            text += ", all drilled"
        if self.problems:
            text += f"; {len(self.problems)} unreadable (listed below)"
        return {
            "rows": total,
            **counts,
            "within_rpo": within,
            "never_backed_up": never_backed,
            "never_drilled": never_drilled,
            "text": text,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated": _iso(self.generated),
            "summary": self.summary(),
            "rows": [row.to_dict(self.generated) for row in self.rows],
            "maintenance": None
            if self.maintenance is None
            else {host: _maintenance(entry) for host, entry in self.maintenance.items()},
            "problems": list(self.problems),
        }


def state_of_check(state: str) -> str:
    """A monitoring state's name (OK, WARNING ...) as a row state's word, for the colours."""
    return {State.OK.name: OK, State.WARNING.name: WARNING}.get(state, CRITICAL)


def _maintenance(entry: Maintenance) -> dict[str, Any]:
    return {
        "runs": [{**asdict(run), "started": _iso(run.started)} for run in entry.runs],
        "checks": [{**asdict(check), "since": _iso(check.since)} for check in entry.checks],
    }


def _point(point: BackupPoint, now: datetime) -> dict[str, Any]:
    return {
        "time": _iso(point.time),
        "age_s": round(_age(now, point.time).total_seconds()),
        "key": point.key,
        "size": point.size,
        "duration_s": point.duration_s,
    }


def _drill(drill: Drill, now: datetime) -> dict[str, Any]:
    return {
        "time": _iso(drill.time),
        "age_s": round(_age(now, drill.time).total_seconds()),
        "backup_key": drill.backup_key,
        "passed": drill.passed,
        "restore_time_s": drill.restore_time_s,
        "reasons": list(drill.reasons),
    }


def _age(now: datetime, time: datetime) -> timedelta:
    return max(now - time, timedelta(0))


def _words(length: timedelta) -> str:
    return format_duration(length.total_seconds())


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def _stamp(time: datetime) -> str:
    return time.strftime("%Y-%m-%d %H:%MZ")


def _iso(time: datetime | None) -> str | None:
    return time.isoformat().replace("+00:00", "Z") if time else None
