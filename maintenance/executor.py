"""Fan a procedure out over hosts in threads: one Result per host, whatever happens.

A failing or unreachable host never stops the others; every exception becomes a Result.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from .errors import HostUnreachable, MaintError
from .hooks import run_hooked
from .inventory import Host
from .results import Result, Status
from .runners import Runner, runner_for
from .runners.base import Deadline
from .secrets import mask_text
from .units import format_duration

Procedure = Callable[[Host, Runner, Any], Result]
DEFAULT_FORKS = 10

log = structlog.get_logger()


def run_procedure(
    task: str,
    procedure: Procedure,
    hosts: Sequence[Host],
    options: Any,
    *,
    forks: int = DEFAULT_FORKS,
    make_runner: Callable[[Host], Runner] = runner_for,
    dry_run: bool = False,
) -> list[Result]:
    """Run PROCEDURE on every host, at most FORKS at once; results in the hosts' order.

    Each host's `hooks` for TASK run around it (on a DRY_RUN they are only listed).
    """
    if forks < 1:
        forks = 1

    def one(host: Host) -> Result:
        return _run_one(task, procedure, host, options, make_runner, dry_run)

    with ThreadPoolExecutor(
        max_workers=min(forks, max(1, len(hosts))), thread_name_prefix="host"
    ) as pool:
        return list(pool.map(one, hosts))


def _run_one(
    task: str,
    procedure: Procedure,
    host: Host,
    options: Any,
    make_runner: Callable[[Host], Runner],
    dry_run: bool,
) -> Result:
    started = time.monotonic()
    bound = log.bind(task=task, host=host.name)
    runner = make_runner(host)
    limit = host.settings.host_timeout or None  # 0: no limit
    # Closing the runner breaks whatever command the procedure is blocked on.
    deadline = Deadline(limit, runner.close)

    def attempt() -> Result:
        return _attempt(procedure, host, runner, options, bound)

    try:
        result = run_hooked(task, host, runner, attempt, dry_run=dry_run)
    finally:
        deadline.cancel()
        runner.close()
    if deadline.expired and result.status != Status.FAILED:
        result = Result(
            host.name, Status.FAILED, error=f"host timed out after {format_duration(limit or 0)}"
        )
    result.duration_s = time.monotonic() - started
    event = bound.error if result.status in (Status.FAILED, Status.UNREACHABLE) else bound.info
    event(
        "host done",
        status=str(result.status),
        duration_s=round(result.duration_s, 3),
        summary=result.summary or None,
        error=result.error,
    )
    return result


def _attempt(procedure: Procedure, host: Host, runner: Runner, options: Any, bound) -> Result:
    """PROCEDURE's result on HOST, every exception turned into a failed or unreachable one."""
    try:
        return procedure(host, runner, options)
    except HostUnreachable as exc:
        return Result(host.name, Status.UNREACHABLE, error=mask_text(str(exc)))
    except MaintError as exc:
        return Result(host.name, Status.FAILED, error=mask_text(str(exc)))
    except Exception as exc:  # a bug in one host's run must not hide the others' results
        bound.exception("procedure crashed")
        return Result(
            host.name,
            Status.FAILED,
            error=mask_text(f"internal error: {type(exc).__name__}: {exc}"),
        )
