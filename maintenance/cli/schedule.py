"""Tasks of the `schedule` namespace: the daemon, its plan, its history, and exports."""

from __future__ import annotations

import json as json_module
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from invoke.exceptions import Exit

from ..errors import ConfigError
from ..logconfig import configure_logging
from ..reporting import EXIT_FAILED, EXIT_USAGE, render_rows
from ..scheduler.state import COMPLETED, FAILED, RunRecord, StateError, open_state
from .common import inventory_path
from .spec import COMMON, Flag, TaskSpec, collection

if TYPE_CHECKING:  # the settings model loads with an inventory, not with `maint --help`
    from ..scheduler.config import Job, Settings

JSON = COMMON["json"]


def _settings(inventory: str | None, check_args: bool = True) -> Settings:
    """The inventory's schedule, checked against the tasks that exist. Exit 2 if invalid.

    CHECK_ARGS: the jobs' args values too, by building each task's plan (spec.flag_check),
    and notify.urls with Apprise.
    """
    from ..scheduler.catalog import catalog_from
    from ..scheduler.config import load_settings
    from .collection import build_namespace  # the collection imports this module

    catalog = catalog_from(build_namespace(), check_args=check_args)
    try:
        return load_settings(inventory_path(inventory), catalog, check_urls=check_args)
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None


def _daemon_settings(inventory: str | None) -> Settings:
    """_settings for the daemon, the jobs' args and notify.urls checked in a forked child:
    building the tasks' plans imports their procedures (psycopg, cryptography, zstandard:
    about 20 MB), and Apprise loads its plugins (25 MB), which the daemon, running every job
    and sending every alert from a child process, never needs itself."""
    settings = _settings(inventory, check_args=False)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, hand the refusal over, leave without any cleanup
        code = 0
        try:
            os.close(reader)
            _settings(inventory)
        except Exit as exc:
            code = exc.code or EXIT_USAGE
            with os.fdopen(writer, "w", encoding="utf-8") as pipe:
                pipe.write(str(exc.message))
        except BaseException as exc:  # said; the daemon then refuses to start
            code = EXIT_USAGE
            with os.fdopen(writer, "w", encoding="utf-8") as pipe:
                pipe.write(f"error: checking the schedule's args: {exc!r}")
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, encoding="utf-8") as pipe:
        refusal = pipe.read()
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise Exit(refusal or "error: checking the schedule's args failed", code=EXIT_USAGE)
    return settings


def _run(flags: SimpleNamespace) -> None:
    from ..report import report_page
    from ..scheduler.daemon import Daemon

    configure_logging()
    settings = _daemon_settings(flags.inventory)
    try:
        store = open_state(settings, daemon=True)
    except StateError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    try:
        code = Daemon(settings, store, pages={"/report": report_page(settings)}).run()
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    finally:
        store.close()
    if code:
        raise Exit(code=code)


def _list(flags: SimpleNamespace) -> None:
    settings = _settings(flags.inventory)
    now = datetime.now(UTC)
    jobs = [_job_plan(job, now, max(1, flags.count)) for job in settings.jobs]
    if flags.json:
        _print_json(
            {"task": "schedule.list", "default_schedule": settings.default_schedule, "jobs": jobs}
        )
        return
    rows = [
        {
            "JOB": plan["job"],
            "TASK": plan["task"],
            "WHEN": plan["when"],
            "LIMIT": plan["limit"] or "all",
            "NEXT RUNS": ", ".join(_local(run, job) for run in plan["next_runs"]),
        }
        for plan, job in zip(jobs, settings.jobs, strict=True)
    ]
    if settings.default_schedule:
        print("(no schedule in the inventory: the default runbook schedule)")
    print(render_rows(rows, ["JOB", "TASK", "WHEN", "LIMIT", "NEXT RUNS"]))


def _status(flags: SimpleNamespace) -> None:
    settings = _settings(flags.inventory)
    try:
        store = open_state(settings, daemon=False)
        try:
            history = store.history(max(1, flags.runs))
        finally:
            store.close()
    except StateError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    jobs = _job_statuses(settings, history)
    if flags.json:
        _print_json({"task": "schedule.status", "jobs": jobs})
    else:
        print(render_rows([_status_row(job) for job in jobs], list(_status_row({}).keys())))
    if any(job["last_completed_status"] == FAILED for job in jobs):
        raise Exit(code=EXIT_FAILED)


def _export(flags: SimpleNamespace) -> None:
    from ..scheduler import export as exporter

    format, output = flags.format, flags.output
    settings = _settings(flags.inventory)
    command = exporter.maint_command()
    try:
        if format == "cron":
            files = {"maint.crontab": exporter.crontab(settings.jobs, settings.inventory, command)}
        elif format == "systemd":
            files = exporter.systemd_units(settings.jobs, settings.inventory, command)
        else:
            raise ConfigError(f"--format: expected cron or systemd, got {format!r}")
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    if output is None:
        for name, content in files.items():
            print(content if len(files) == 1 else f"# {name}\n{content}")
        return
    directory = Path(output)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_text(content, encoding="utf-8")
        print(directory / name)
    if format == "systemd":
        _verify_units([directory / name for name in files])


def _verify_units(paths: list[Path]) -> None:
    """Run `systemd-analyze verify` over the written units; exit 1 with its complaints."""
    tool = shutil.which("systemd-analyze")
    if tool is None or not paths:
        return
    done = subprocess.run(
        [tool, "verify", "--man=no", *map(str, paths)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise Exit(f"error: systemd-analyze verify:\n{done.stderr.strip()}", code=EXIT_FAILED)


def _job_plan(job: Job, now: datetime, count: int) -> dict[str, Any]:
    slots, after = [], now
    for _ in range(count):
        after = job.next_slot(after)
        slots.append(job.fire_time(after))
    return {
        "job": job.name,
        "task": job.task,
        "when": job.describe(),
        "timezone": job.zone_name,
        "limit": job.limit,
        "args": list(job.args),
        "jitter_s": job.jitter.total_seconds(),
        "next_runs": [slot.isoformat() for slot in slots],
    }


def _local(iso: str, job: Job) -> str:
    return datetime.fromisoformat(iso).astimezone(job.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _job_statuses(settings: Settings, history: list[RunRecord]) -> list[dict[str, Any]]:
    """Per job (scheduled or seen in history): last run, last success, recent runs."""
    scheduled = [job.name for job in settings.jobs]
    names = scheduled + sorted({record.job for record in history} - set(scheduled))
    statuses = []
    for name in names:
        records = [record for record in history if record.job == name]  # newest first
        completed = [record for record in records if record.status in COMPLETED]
        success = next((record for record in completed if record.status != FAILED), None)
        statuses.append(
            {
                "job": name,
                "scheduled": name in scheduled,
                "last": records[0].to_dict() if records else None,
                "last_completed_status": completed[0].status if completed else None,
                "last_success": success.to_dict()["ended"] if success else None,
                "failed": sum(record.status == FAILED for record in records),
                "skipped": sum(record.status == "skipped" for record in records),
                "runs": [record.to_dict() for record in records],
            }
        )
    # Failing jobs first, then jobs never run, then the rest; by name within each.
    rank = {FAILED: 0, None: 1}
    return sorted(statuses, key=lambda job: (rank.get(job["last_completed_status"], 2), job["job"]))


def _status_row(job: dict[str, Any]) -> dict[str, str]:
    last = job.get("last") or {}
    return {
        "JOB": job.get("job", ""),
        "LAST": last.get("status") or "never run",
        "STARTED": last.get("started") or "",
        "TIME": f"{last['duration_s']:.1f}s" if last.get("duration_s") is not None else "",
        "LAST OK": job.get("last_success") or "",
        "FAILED": str(job.get("failed", "")),
        "SKIPPED": str(job.get("skipped", "")),
        "ERROR": (last.get("error") or "").replace("\n", " ")[:120],
    }


def _print_json(document: dict[str, Any]) -> None:
    print(json_module.dumps(document, indent=2, default=str))


SPECS = (
    TaskSpec(
        "schedule.run",
        """Run the scheduler daemon in the foreground until SIGTERM or SIGINT.

        Each due job runs as `maint <task> --json` in a child process; history goes to the
        state directory (SQLite) or to `state_dsn` (PostgreSQL, several daemons allowed).
        """,
        common=("inventory",),
        action=_run,
    ),
    TaskSpec(
        "schedule.list",
        "Show every scheduled job with its next run times (jitter included).",
        common=("inventory",),
        flags=(Flag("count", "how many next run times to show per job (default 3)", 3), JSON),
        action=_list,
    ),
    TaskSpec(
        "schedule.status",
        """Show each job's last runs and outcomes, failing jobs first.

        Exits 1 when the last completed run of any job failed, so cron or a monitor can alert.
        """,
        common=("inventory", "json"),
        flags=(Flag("runs", "how many recent runs to keep per job in the --json output "
                    "(default 10)", 10),),
        action=_status,
    ),
    TaskSpec(
        "schedule.export",
        """Write the schedule as a crontab or systemd timer units running `maint <task>`.

        Units written to a directory are checked with `systemd-analyze verify` when it is
        present.
        """,
        common=("inventory",),
        flags=(
            Flag("format", "cron (a crontab) or systemd (.service and .timer units)", "cron"),
            Flag("output", "directory to write into (default: print on stdout)"),
        ),
        action=_export,
    ),
)

namespace = collection("schedule", SPECS)
