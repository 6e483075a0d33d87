"""Running one job: `maint <task> --inventory PATH --json ...` as a child process.

A child per run isolates the daemon from a task's crash, memory and leaked threads, and lets
a stuck run be stopped with a signal; the daemon itself stays small. The task's JSON document
gives each host's status; without one (a crash, bad flags) the end of its stderr is the error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..secrets import mask_text
from .config import Job
from .state import FAILED, OK, Outcome

PARENT_ENV = "MAINT_SCHEDULER_PID"  # tells the child to die with the daemon (cli/__main__.py)
FAILING_HOSTS = ("failed", "unreachable")
ERROR_TAIL_CHARS = 2000
STOP_WAIT_S = 10


def job_argv(job: Job, inventory: Path) -> list[str]:
    """The child's command line: the same Python running the product's CLI module."""
    argv = [sys.executable, "-m", "maintenance.cli", job.task, "--inventory", str(inventory)]
    argv.append("--json")
    if job.limit:
        argv += ["--limit", job.limit]
    return argv + list(job.args)


def run_job(
    job: Job, inventory: Path, on_start: Callable[[subprocess.Popen], None] | None = None
) -> Outcome:
    """Run JOB to completion (or its timeout) and say how it went. Never raises for the task."""
    started = datetime.now(UTC)
    try:
        child = subprocess.Popen(
            job_argv(job, inventory),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env={**os.environ, PARENT_ENV: str(os.getpid())},
            # Own process group: a Ctrl-C at the daemon's terminal is the daemon's to handle.
            start_new_session=True,
        )
    except OSError as exc:
        return Outcome(FAILED, started, datetime.now(UTC), error=f"cannot start task: {exc}")
    if on_start is not None:
        on_start(child)
    timeout = job.timeout.total_seconds() if job.timeout else None
    timed_out = False
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop(child)
        stdout, stderr = child.communicate()
    _relay(stderr)
    outcome = outcome_from(child.returncode, stdout, stderr, started)
    if timed_out:
        outcome.status = FAILED
        outcome.error = "; ".join(filter(None, [f"timed out after {job.timeout}", outcome.error]))
    return outcome


def stop(child: subprocess.Popen) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it is still there after a while."""
    for sig, wait in ((signal.SIGTERM, STOP_WAIT_S), (signal.SIGKILL, None)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            return
        try:
            child.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def outcome_from(returncode: int, stdout: str, stderr: str, started: datetime) -> Outcome:
    """The Outcome of a finished child from its exit code and output."""
    ended = datetime.now(UTC)
    document = _document(stdout)
    if document is None:
        tail = mask_text(stderr.strip())[-ERROR_TAIL_CHARS:] or f"exit code {returncode}"
        return Outcome(FAILED, started, ended, error=f"task exited {returncode}: {tail}")
    hosts = [_host(result) for result in document.get("results") or []]
    failing = [host for host in hosts if host["status"] in FAILING_HOSTS]
    error = "; ".join(f"{host['host']}: {host['error'] or host['status']}" for host in failing)
    return Outcome(FAILED if failing else OK, started, ended, hosts=hosts, error=error or None)


def _document(stdout: str) -> dict[str, Any] | None:
    try:
        document = json.loads(stdout)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "results" in document else None


def _host(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": str(result.get("host")),
        "status": str(result.get("status")),
        "duration_s": result.get("duration_s"),
        "error": result.get("error"),
        "summary": result.get("summary") or "",
        "details": result.get("details") or {},
    }


def _relay(stderr: str) -> None:
    """Pass the task's own log lines on to the daemon's stderr (journal, container log)."""
    if stderr:
        sys.stderr.write(stderr if stderr.endswith("\n") else stderr + "\n")
        sys.stderr.flush()
