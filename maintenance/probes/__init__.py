"""Probes: health.check's checks of the services around PostgreSQL (`health.probes`).

Each kind is a module of this package named after the kind (`http`, `tcp`, `sql`, ...)
exposing `probe(settings, context) -> Check`: it measures, grades against the probe's
thresholds and says what it found; the settings model of the kind is in
maintenance.settings.probes. A module is imported when a probe of its kind first runs, so a
host without sql probes never loads psycopg.

A host's probes run in parallel, each in its own thread and bounded by its timeout: a check
takes about as long as its slowest probe, not the sum of them. A probe that raises, or does
not return within its timeout, becomes a check of its own (UNKNOWN, or CRITICAL for no answer
in time); it never takes the host's other checks down with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from importlib import import_module

from ..errors import MaintError
from ..inventory import Host
from ..monitoring import Check, State
from ..runners import Runner
from ..secrets import mask_text
from ..settings.probes import ProbeBase
from .base import ProbeContext

__all__ = ["ProbeContext", "RunningProbes", "run_probes", "start_probes"]

# A probe past its timeout is given this long to say so itself (its own socket or command
# timeout fires at the same moment), before the check says it for it.
GRACE_S = 1.0

ProbeFunction = Callable[[ProbeBase, ProbeContext], Check]


def probe_function(kind: str) -> ProbeFunction:
    """The `probe` function of KIND's module."""
    function: ProbeFunction = import_module(f"{__name__}.{kind}").probe
    return function


def run_probes(host: Host, runner: Runner, probes: Sequence[ProbeBase]) -> list[Check]:
    """A check per probe of HOST, in the order of PROBES, all run at the same time."""
    with ProbeContext(host, runner) as context:
        return start_probes(context, probes).checks()


def start_probes(context: ProbeContext, probes: Sequence[ProbeBase]) -> RunningProbes:
    """PROBES started, each in its own thread: the caller may do other work (health.check's
    built-in checks) while they run, then collect them with `checks()` while CONTEXT is open."""
    return RunningProbes([_Run(probe, context) for probe in probes])


class RunningProbes:
    """Probes under way."""

    def __init__(self, runs: list[_Run]) -> None:
        self._runs = runs

    def checks(self) -> list[Check]:
        """Each probe's check, in order, once it is done or its time is up."""
        return [run.check() for run in self._runs]


class _Run:
    """One probe running in a daemon thread: a probe stuck past its timeout must not keep
    the process alive."""

    def __init__(self, probe: ProbeBase, context: ProbeContext) -> None:
        self.probe = probe
        self.result: Check | None = None
        self.deadline = time.monotonic() + probe.timeout + GRACE_S
        self.thread = threading.Thread(
            target=self._run, args=(context,), name=f"probe {probe.name}", daemon=True
        )
        self.thread.start()

    def _run(self, context: ProbeContext) -> None:
        probe = self.probe
        try:
            self.result = probe_function(probe.kind)(probe, context)
        except MaintError as exc:
            self.result = Check(probe.name, State.UNKNOWN, mask_text(str(exc)))
        except Exception as exc:  # a probe's bug or a library's surprise: one check, not the host
            said = f"{type(exc).__name__}: {exc}"
            self.result = Check(probe.name, State.UNKNOWN, f"probe failed: {mask_text(said)}")

    def check(self) -> Check:
        self.thread.join(max(0.0, self.deadline - time.monotonic()))
        if self.result is None:
            return Check(
                self.probe.name,
                State.CRITICAL,
                f"no answer within the probe's timeout ({self.probe.timeout:g}s)",
            )
        return self.result
