"""What every probe kind shares: the context it runs in and the grading of its number."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING

from ..inventory import Host
from ..monitoring import State, grade_high, grade_low
from ..runners import Runner
from ..settings.thresholds import Worse, said

if TYPE_CHECKING:
    from ..pg import Postgres

TASK = "health.check"


class ProbeContext:
    """HOST and its RUNNER, for the probes of one health.check of the host.

    What they share (the tunnel to the PostgreSQL server, for every sql probe and for
    health.check's own server checks) is opened on first use, by whichever thread comes
    first, and closed with the context.
    """

    def __init__(self, host: Host, runner: Runner) -> None:
        self.host = host
        self.runner = runner
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self._postgres: Postgres | None = None

    def postgres(self) -> Postgres:
        """The host's server (postgres.dsn), through its tunnel if `postgres.ssh_tunnel`.
        Raise ConfigError without a DSN, MaintError if a tunnel cannot be opened."""
        from .. import pg

        with self._lock:
            if self._postgres is None:
                self._postgres = self._stack.enter_context(pg.reach(self.host, self.runner, TASK))
            return self._postgres

    def __enter__(self) -> ProbeContext:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()


def graded(value: float, warn: float | None, crit: float | None, worse: Worse = "higher") -> State:
    """VALUE's state against the thresholds that are set (none set: OK)."""
    unset = float("inf") if worse == "higher" else float("-inf")
    warn_at, crit_at = unset if warn is None else warn, unset if crit is None else crit
    grade = grade_high if worse == "higher" else grade_low
    return grade(value, warn_at, crit_at)


def milliseconds(value: float) -> str:
    """'12 ms', '1.4 s': a latency as a person reads it."""
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.1f} s"


def measured(value: float, warn: float | None, crit: float | None, unit: str = "") -> str:
    """'3 (warn 1, crit 5)', '85% (warn 80%)': a value with the thresholds it was graded
    against, each followed by UNIT."""
    limits = [
        f"{word} {said(limit)}{unit}"
        for word, limit in (("warn", warn), ("crit", crit))
        if limit is not None
    ]
    return said(value) + unit + (f" ({', '.join(limits)})" if limits else "")
