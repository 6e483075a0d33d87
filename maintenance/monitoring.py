"""The monitoring-plugin vocabulary health.check and certs.check share.

Nagios, Icinga and their kin read a check's exit code as its state: 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN. Both checks grade values against warn/crit thresholds, give a host the
worst state of its checks and the task the worst over hosts; doing that here, once, keeps the
two from drifting apart (a certificate at exactly `crit_days` is critical as a disk at exactly
`disk_crit_free_pct` is).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from .results import Result, Status


class State(IntEnum):
    """A check's state; its value is the monitoring-plugin exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Check:
    """One check of a host: its state, what it found in words, and the measured value.

    WARN and CRIT are the thresholds the value was graded against (a check's perfdata); they
    appear in the JSON only when set, so the built-in checks print what they always printed.
    """

    name: str
    state: State
    message: str
    value: Any = None
    warn: float | None = None
    crit: float | None = None

    def to_dict(self) -> dict[str, Any]:
        document = {
            "name": self.name,
            "state": self.state.name,
            "message": self.message,
            "value": self.value,
        }
        thresholds = {"warn": self.warn, "crit": self.crit}
        return document | {key: value for key, value in thresholds.items() if value is not None}


def grade_low(value: float, warn: float, crit: float) -> State:
    """State of a value where less is worse (free space, days left): at or below crit is
    CRITICAL, at or below warn WARNING."""
    return State.CRITICAL if value <= crit else State.WARNING if value <= warn else State.OK


def grade_high(value: float, warn: float, crit: float) -> State:
    """State of a value where more is worse (connections, stuck sessions, ages): at or above
    crit is CRITICAL, at or above warn WARNING."""
    return State.CRITICAL if value >= crit else State.WARNING if value >= warn else State.OK


def worst(states: Iterable[State]) -> State:
    """The worst of STATES; OK when there are none."""
    return max(states, default=State.OK)


def host_result(host: str, state: State, summary: str, **details: Any) -> Result:
    """A host's Result for its worst STATE: CRITICAL or UNKNOWN fails the host; a WARNING
    host stays `ok` in the summary counts (the exit code carries the warning).

    DETAILS follow `state` in the JSON document, as the checks have always printed them.
    """
    failed = state >= State.CRITICAL
    return Result(
        host,
        Status.FAILED if failed else Status.OK,
        details={"state": state.name, **details},
        summary=summary,
        error=summary if failed else None,
    )


def exit_code(results: Sequence[Result]) -> int:
    """The task's exit code: the worst state over hosts; an unreachable host is UNKNOWN."""
    states = (
        State.UNKNOWN
        if result.status == Status.UNREACHABLE
        else State[result.details.get("state", "CRITICAL")]
        for result in results
    )
    return int(worst(states))
