"""The scheduler daemon: runs every job when its slot comes, one child process per run.

One main thread sleeps until the next slot (or a signal), claims the slot in the state store
and hands the run to a thread that waits for the child. So the daemon idles at no CPU, a job
that crashes or hangs only takes its own child down, and a run still going when its next slot
comes is skipped and counted instead of started twice. SIGTERM or SIGINT: no new runs, the
running ones get the stop grace to finish (then they are stopped), exit 0.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from wsgiref.simple_server import WSGIServer

import structlog

from ..errors import ConfigError
from .child import run_job, stop
from .config import Job, Settings
from .http import serve
from .metrics import SchedulerMetrics
from .notify import Notifier
from .state import FAILED, Claim, Outcome, StateError, StateStore

SCHEDULE, CATCH_UP, TAKE_OVER = "schedule", "catch-up", "take-over"
# The longest the main loop sleeps: bounds the effect of wall-clock jumps and suspends, and
# is how often abandoned runs of dead daemons are looked for.
MAX_SLEEP_S = 30.0

log = structlog.get_logger()


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Planned:
    slot: datetime
    fire: datetime


class Daemon:
    """Runs SETTINGS' jobs against STORE until stopped; serves /metrics and PAGES (path ->
    a function rendering an HTML page, such as /report) on `metrics.listen`."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        pages: Mapping[str, Callable[[], str]] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pages = dict(pages or {})
        self.metrics = SchedulerMetrics()
        self.notifier = Notifier(settings.notify, store)
        self.jobs = {job.name: job for job in settings.jobs}
        self.plan: dict[str, _Planned] = {}
        self.running: dict[str, threading.Thread] = {}
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self._mutex = threading.Lock()
        # A signal handler only sets a flag and writes to this pipe, the one thing that is safe
        # there (setting a threading.Event can deadlock); the main loop sleeps in select on it.
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self._next_housekeeping = datetime.min.replace(tzinfo=UTC)
        self._last_prune: datetime | None = None
        self._metrics_server: WSGIServer | None = None

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the exit code (0 after a graceful stop)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self._serve_metrics()
        now = _now()
        log.info(
            "scheduler started",
            daemon=self.store.daemon,
            jobs=len(self.jobs),
            state="postgresql" if self.settings.state_dsn else str(self.settings.state_dir),
            alerts_to=[channel.label for channel in self.notifier.channels],
        )
        self._housekeeping(now)
        self._catch_up(now)
        for job in self.jobs.values():
            self._plan(job, now)
        while not self.stopping:
            now = _now()
            for job in list(self.jobs.values()):
                planned = self.plan[job.name]
                if planned.fire <= now:
                    self._launch(job, planned.slot, SCHEDULE)
                    self._plan(job, max(now, planned.slot))
            if self._next_housekeeping <= now:
                self._housekeeping(now)
            wake = min([planned.fire for planned in self.plan.values()] + [self._next_housekeeping])
            self._sleep(min(MAX_SLEEP_S, max(0.0, (wake - _now()).total_seconds())))
        log.info("stopping: no new runs")
        return self._shutdown()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
            os.write(self._wake_write, b"!")

    def _sleep(self, seconds: float) -> None:
        """Sleep SECONDS or until a signal asks to stop."""
        ready, _, _ = select.select([self._wake_read], [], [], seconds)
        if ready:
            os.read(self._wake_read, 512)

    def _plan(self, job: Job, after: datetime) -> None:
        slot = job.next_slot(after)
        self.plan[job.name] = _Planned(slot, job.fire_time(slot))
        self.metrics.next_run.labels(job.name).set(job.fire_time(slot).timestamp())

    def _catch_up(self, now: datetime) -> None:
        """Run once, now, each job whose latest slot passed unrun within the catch-up window."""
        if self.settings.catch_up <= timedelta(0):
            return
        for job in self.jobs.values():
            slot = job.latest_slot(now)
            if now - slot > self.settings.catch_up or job.name in self.running:
                continue
            try:
                missed = self.store.missed(job, slot)
            except StateError as exc:
                log.error("catch-up check failed", job=job.name, error=str(exc))
                continue
            if missed:
                log.info("catching up a missed run", job=job.name, slot=slot.isoformat())
                self._launch(job, slot, CATCH_UP)

    def _housekeeping(self, now: datetime) -> None:
        """Take over runs abandoned by dead daemons (within catch-up), forget old history."""
        self._next_housekeeping = now + timedelta(seconds=MAX_SLEEP_S)
        try:
            orphans = self.store.abandon_orphans()
            if self._last_prune is None or now - self._last_prune > timedelta(hours=1):
                self.store.prune(now - self.settings.history)
                self._last_prune = now
        except StateError as exc:
            log.error("state housekeeping failed", error=str(exc))
            return
        for name, slot in orphans:
            job = self.jobs.get(name)
            log.warning("run abandoned by a stopped daemon", job=name, slot=slot.isoformat())
            if job is not None and now - slot <= self.settings.catch_up:
                self._launch(job, slot, TAKE_OVER)

    def _launch(self, job: Job, slot: datetime, trigger: str) -> None:
        """Claim SLOT of JOB and start its run in a thread, unless a run is still going."""
        with self._mutex:
            busy = job.name in self.running
        if busy:
            log.warning("previous run still going: skipped", job=job.name, slot=slot.isoformat())
            self.metrics.runs.labels(job.name, "skipped").inc()
            try:
                self.store.record_skip(job, slot, "the previous run was still going")
            except StateError as exc:
                log.error("skip not recorded", job=job.name, error=str(exc))
            return
        try:
            claim = self.store.claim(job, slot, trigger)
        except StateError as exc:
            log.error("run not started: state database unavailable", job=job.name, error=str(exc))
            return
        if claim is None:
            log.debug("slot already claimed", job=job.name, slot=slot.isoformat())
            return
        thread = threading.Thread(
            target=self._run, args=(job, claim, trigger), name=f"job {job.name}", daemon=True
        )
        with self._mutex:
            self.running[job.name] = thread
        self.metrics.running.labels(job.name).set(1)
        thread.start()

    def _run(self, job: Job, claim: Claim, trigger: str) -> None:
        """One run, start to record. Whatever goes wrong stays inside this run."""
        bound = log.bind(job=job.name, task=job.task, slot=claim.slot.isoformat())
        bound.info("run started", trigger=trigger)
        started = datetime.now(UTC)
        try:
            self.notifier.started(job)
            outcome = run_job(job, self.settings.inventory, self._register_child(job))
        except Exception as exc:  # a bug here must cost one run, never the daemon
            bound.exception("run crashed")
            outcome = Outcome(FAILED, started, datetime.now(UTC), error=f"internal error: {exc}")
        try:
            self.store.finish(claim, outcome)
        except StateError as exc:
            bound.error("run not recorded", error=str(exc))
        try:
            self.metrics.job_finished(job.name, job.task, outcome)
            self.notifier.finished(job, claim.slot, outcome)
        except Exception:
            bound.exception("reporting the run failed")
        finally:
            with self._mutex:
                self.running.pop(job.name, None)
                self.children.pop(job.name, None)
            self.metrics.running.labels(job.name).set(0)
        event = bound.error if outcome.status == FAILED else bound.info
        event(
            "run finished",
            status=outcome.status,
            duration_s=round(outcome.duration_s, 3),
            hosts=len(outcome.hosts),
            error=outcome.error,
        )

    def _register_child(self, job: Job) -> Callable[[subprocess.Popen], None]:
        def register(child: subprocess.Popen) -> None:
            with self._mutex:
                self.children[job.name] = child

        return register

    def _shutdown(self) -> int:
        """Give running jobs the stop grace, stop what is left, then return 0."""
        deadline = time.monotonic() + self.settings.stop_grace.total_seconds()
        with self._mutex:
            threads = list(self.running.values())
        if threads:
            log.info(
                "waiting for running jobs",
                jobs=len(threads),
                grace_s=self.settings.stop_grace.total_seconds(),
            )
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._mutex:
            leftovers = dict(self.children)
        for name, child in leftovers.items():
            log.warning("stop grace over: stopping the run", job=name)
            stop(child)
        for thread in threads:
            thread.join()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        os.close(self._wake_read)
        os.close(self._wake_write)
        log.info("scheduler stopped")
        return 0

    def _serve_metrics(self) -> None:
        """Serve /metrics (and the pages) on the `metrics.listen` address. Raise ConfigError
        if it is taken."""
        if self.settings.metrics_listen is None:
            return
        address, port = self.settings.metrics_listen
        try:
            self._metrics_server = serve(address, port, self.metrics.registry, self.pages)
        except OSError as exc:
            raise ConfigError(
                f"key 'metrics.listen': cannot listen on {address}:{port}: {exc.strerror}"
            ) from None
        log.info("metrics served", url=f"http://{address}:{port}/metrics", pages=list(self.pages))
