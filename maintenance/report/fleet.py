"""The report of an inventory as `maint report` and the daemon's `/report` make it.

The scheduler's records come from its state database when there is one to read (`state_dsn`,
or a SQLite file already in the state directory); otherwise the page has no maintenance
section. The daemon renders the page on request and keeps it CACHE_S seconds, so a dashboard
reloading every few seconds does not list every store each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from ..inventory import Host, load_inventory
from ..scheduler.config import Settings
from ..scheduler.state import StateError, StateStore, open_state
from ..scheduler.state_sqlite import DATABASE
from .collect import build_report
from .html import render_html
from .model import Report

CACHE_S = 30.0


def fleet_report(hosts: Sequence[Host], settings: Settings) -> Report:
    """The report of HOSTS with the scheduler's records of SETTINGS' jobs, if any are kept."""
    try:
        state = open_records(settings)
    except StateError as exc:
        report = build_report(hosts)
        problem = f"the scheduler's records could not be read: {exc}"
        return Report(report.generated, report.rows, None, (*report.problems, problem))
    try:
        return build_report(hosts, state=state, jobs=settings.jobs)
    finally:
        if state is not None:
            state.close()


def open_records(settings: Settings) -> StateStore | None:
    """The state database to read, or None when the scheduler never kept one here."""
    if settings.state_dsn or (settings.state_dir / DATABASE).exists():
        return open_state(settings, daemon=False)
    return None


def report_page(settings: Settings, cache_s: float = CACHE_S) -> Callable[[], str]:
    """The daemon's /report: the whole inventory's page, rendered at most every CACHE_S."""
    lock = threading.Lock()
    cached: list[tuple[float, str]] = []

    def page() -> str:
        with lock:
            if cached and time.monotonic() - cached[0][0] < cache_s:
                return cached[0][1]
            hosts = list(load_inventory(settings.inventory))
            text = render_html(fleet_report(hosts, settings))
            cached[:] = [(time.monotonic(), text)]
            return text

    return page
