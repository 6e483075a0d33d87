"""Alerts on state changes: which (job, host, check) states changed in a run, and the message.

A run is read as a set of observed states: the job itself (CRITICAL when the task gave no
report: it crashed, or its flags or --limit were refused), each host's run (CRITICAL when it
failed without saying which check, UNKNOWN when unreachable) and each check a host reported
(`details.checks` of health.check, `details.targets` of certs.check, with their WARNINGs).
Compared with the states kept from earlier runs, a state that changed is alerted at once,
a recovery to OK too, and a state that stays not OK again every `repeat` (counted in slots,
so a 2 s job with a 24 h repeat alerts once a day, not every run). One message per run
groups every change. Pure functions of their inputs: the clock is the run's slot.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..monitoring import State
from ..settings.durations import duration_words
from .metrics import detail_checks
from .state import FAILED, Outcome, history_hosts

OK = State.OK.name
JOB = ""  # the host of the job's own state; as a check: the host's run as a whole
FAILING_STATES = {"failed": State.CRITICAL, "unreachable": State.UNKNOWN}
MAX_TITLE_ITEMS = 3
MAX_MESSAGE_CHARS = 500

Key = tuple[str, str]  # (host, check)


@dataclass(frozen=True)
class Observation:
    """A state seen in this run: of the job (host ""), a host's run (check "") or a check."""

    host: str
    check: str
    state: str  # a State name: OK, WARNING, CRITICAL, UNKNOWN
    message: str = ""

    @property
    def key(self) -> Key:
        return (self.host, self.check)


@dataclass(frozen=True)
class CheckState:
    """What the state store keeps per (job, host, check): the state, since when, when alerted."""

    host: str
    check: str
    state: str
    since: datetime
    alerted: datetime | None = None
    message: str = ""

    @property
    def key(self) -> Key:
        return (self.host, self.check)


@dataclass(frozen=True)
class Change:
    """One line of an alert: a state that changed, recovered, or is still not OK."""

    host: str
    check: str
    previous: str | None  # None: never seen before
    state: str
    since: datetime
    message: str

    @property
    def reminder(self) -> bool:
        return self.previous == self.state

    @property
    def recovered(self) -> bool:
        return self.state == OK

    @property
    def subject(self) -> str:
        """'db1 disk /', 'db1' (the host's run), or 'run' (the job's)."""
        return " ".join(part for part in (self.host, self.check) if part) or "run"

    @property
    def verb(self) -> str:
        if self.recovered:
            return "recovered"
        return f"still {self.state}" if self.reminder else self.state

    def line(self) -> str:
        """'db1 disk /: OK -> CRITICAL: 3% free' as the message body says it."""
        if self.reminder:
            head = f"{self.subject}: still {self.state} since {_iso(self.since)}"
        elif self.recovered:
            head = f"{self.subject}: {self.previous} -> OK (recovered)"
        else:
            head = f"{self.subject}: {self.previous or 'new'} -> {self.state}"
        return f"{head}: {self.message}" if self.message else head

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host or None,
            "check": self.check or None,
            "previous": self.previous,
            "state": self.state,
            "since": _iso(self.since),
            "reminder": self.reminder,
            "message": self.message,
        }


@dataclass(frozen=True)
class Alert:
    """One message for one run of a job: a title (the mail's subject) and the changes."""

    job: str
    task: str
    slot: datetime
    changes: tuple[Change, ...]
    outcome: Outcome | None = None
    repeat: timedelta | None = None
    test: bool = False  # notify.test's message: no change, only proof that the channel works

    @property
    def event(self) -> str:
        """'failure', 'warning' or 'recovery': the worst change, as the webhook says it."""
        if self.test:
            return "test"
        worst = max((State[change.state] for change in self.changes), default=State.OK)
        return (
            "recovery" if worst == State.OK else "warning" if worst == State.WARNING else "failure"
        )

    @property
    def title(self) -> str:
        if self.test:
            return "maint: test message"
        items = [f"{change.subject} {change.verb}" for change in self.changes]
        more = len(items) - MAX_TITLE_ITEMS
        shown = ", ".join(items[:MAX_TITLE_ITEMS]) + (f" and {more} more" if more > 0 else "")
        return f"maint {self.job}: {shown}"

    @property
    def body(self) -> str:
        if self.test:
            return (
                f"Test message from maint notify.test on {socket.gethostname()} at "
                f"{_iso(self.slot)}: this channel reaches you. Alerts come when a check or "
                "a scheduled run changes state."
            )
        lines = [change.line() for change in self.changes]
        lines.append("")
        lines.append(
            f"job {self.job} ({self.task}), run of {_iso(self.slot)}, "
            f"scheduler on {socket.gethostname()}"
        )
        if self.repeat is not None:
            lines.append(f"Repeated every {duration_words(self.repeat)} while not OK.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The json webhook's document: the run as before, plus the title and the changes."""
        document: dict[str, Any] = {
            "event": self.event,
            "job": self.job,
            "task": self.task,
            "daemon_host": socket.gethostname(),
            "slot": _iso(self.slot),
            "title": self.title,
            "changes": [change.to_dict() for change in self.changes],
        }
        if self.outcome is not None:
            document |= {
                "status": self.outcome.status,
                "started": self.outcome.started.isoformat(),
                "ended": self.outcome.ended.isoformat(),
                "duration_s": round(self.outcome.duration_s, 3),
                "hosts": history_hosts(self.outcome),
                "error": self.outcome.error,
            }
        return document


def observe(outcome: Outcome) -> Iterator[Observation]:
    """The states of one run: the job's, each host's run, each reported check."""
    if not outcome.hosts:
        state = State.CRITICAL if outcome.status == FAILED else State.OK
        yield Observation(JOB, JOB, state.name, _short(outcome.error))
        return
    yield Observation(JOB, JOB, OK)
    for host in outcome.hosts:
        name, details = str(host["host"]), host.get("details") or {}
        checks = list(detail_checks(details))
        state = FAILING_STATES.get(str(host["status"]), State.OK)
        if checks:  # a failure its checks explain is theirs to alert
            state = State.UNKNOWN if state == State.UNKNOWN else State.OK
        elif isinstance(details, Mapping) and details.get("state") in State.__members__:
            state = max(state, State[details["state"]])
        message = host.get("error") or (host.get("summary") if state != State.OK else "")
        yield Observation(name, JOB, state.name, _short(message))
        for check in checks:
            yield Observation(name, check.name, check.state.name, _short(check.message))


def evaluate(
    kept: Mapping[Key, CheckState],
    observed: Iterable[Observation],
    slot: datetime,
    repeat: timedelta,
) -> tuple[list[CheckState], list[Change]]:
    """The states to keep after a run of SLOT, and the changes to alert.

    A first sighting counts as coming from OK (a new check that is CRITICAL alerts, a new OK
    one does not). A state that stays not OK is alerted again once REPEAT has passed since it
    last was. States not observed in this run (a host left out by --limit) are left as kept.
    """
    states: list[CheckState] = []
    changes: list[Change] = []
    for seen in observed:
        old = kept.get(seen.key)
        previous = old.state if old else None
        changed = seen.state != (previous or OK)
        since = old.since if old and not changed else slot
        alerted = old.alerted if old else None
        due = seen.state != OK and (alerted is None or slot - alerted >= repeat)
        if changed or due:
            alerted = slot
            changes.append(Change(seen.host, seen.check, previous, seen.state, since, seen.message))
        states.append(CheckState(seen.host, seen.check, seen.state, since, alerted, seen.message))
    # Worst first, recoveries last: the title names what matters most.
    return states, sorted(changes, key=lambda change: -State[change.state])


def notify_test_alert() -> Alert:
    """The message `maint notify.test` sends: says what it is, changes nothing."""
    return Alert("notify.test", "notify.test", datetime.now(UTC), (), test=True)


def _short(text: Any) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
