"""The schedule as a crontab or as systemd .service + .timer pairs, for teams without the daemon.

Both run `maint <task> --inventory PATH` with the job's limit and flags, at the same times the
daemon would (monthly day 29-31 on the last day of shorter months, "last" on the last day).
Built as plain text from the frozen jobs, so tests check the lines without installing them.
"""

from __future__ import annotations

import calendar as _gregorian
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import time
from pathlib import Path

from ..errors import ConfigError
from .calendar import WEEKDAYS, Daily, Interval, Monthly, Weekly
from .config import Job

# Months that can be shorter than day 29, 30, 31 (February counts as 28 days: the 29th of a
# leap year is matched by the day itself).
_SHORT_MONTHS = {day: [m for m in range(1, 13) if _gregorian.monthrange(2023, m)[1] < day]
                 for day in (29, 30, 31)}  # fmt: skip
# "$(date ...)" is true on the last day of the month: GNU date, as on every Linux.
_LAST_DAY_TEST = '[ "$(date -d tomorrow +\\%d)" = 01 ] &&'
_UNIT_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SYSTEMD_SAFE = re.compile(r"[A-Za-z0-9_./:=@+,-]+")


def maint_command() -> list[str]:
    """How exported entries start the product: the `maint` script installed with it."""
    script = Path(sys.executable).parent / "maint"
    if script.is_file():
        return [str(script)]
    found = shutil.which("maint")
    return [found] if found else [sys.executable, "-m", "maintenance.cli"]


def job_command(job: Job, inventory: Path, command: Sequence[str]) -> list[str]:
    argv = [*command, job.task, "--inventory", str(inventory)]
    if job.limit:
        argv += ["--limit", job.limit]
    return argv + list(job.args)


def crontab(jobs: Sequence[Job], inventory: Path, command: Sequence[str]) -> str:
    """A crontab (user format) running every job. Raise ConfigError for an interval cron
    cannot express (seconds, or minutes and hours that do not divide an hour or a day)."""
    lines = [
        f"# maint schedule from {inventory}; install with `crontab FILE`.",
        "# CRON_TZ lines need cronie; other crons use the machine's time zone.",
        "SHELL=/bin/sh",
        f"PATH={Path(command[0]).parent}:/usr/local/bin:/usr/bin:/bin",
    ]
    zone = None
    # Jobs in the machine's time zone first: CRON_TZ stays set for every line after it.
    for job in sorted(jobs, key=lambda job: job.zone_name or ""):
        shell = " ".join(shlex.quote(arg) for arg in job_command(job, inventory, command))
        shell = shell.replace("%", "\\%")
        if job.jitter.total_seconds() >= 1:
            shell = f"sleep $(shuf -i 0-{int(job.jitter.total_seconds()) - 1} -n 1); {shell}"
        if job.zone_name != zone and not isinstance(job.cadence, Interval):
            zone = job.zone_name
            lines.append(f"CRON_TZ={zone}")
        lines.append(f"# {job.where} {job.name}: {job.describe()}")
        lines += [f"{when} {shell}" for when in cron_times(job)]
    return "\n".join(lines) + "\n"


def cron_times(job: Job) -> list[str]:
    """The five-field times of JOB; a monthly day 29-31 or 'last' adds a last-day test."""
    cadence = job.cadence
    if isinstance(cadence, Interval):
        return [_cron_interval(job, cadence.seconds)]
    minute, hour = cadence.at.minute, cadence.at.hour
    if isinstance(cadence, Daily):
        return [f"{minute} {hour} * * *"]
    if isinstance(cadence, Weekly):
        return [f"{minute} {hour} * * {(cadence.weekday + 1) % 7}"]
    assert isinstance(cadence, Monthly)
    if cadence.day is None:
        return [f"{minute} {hour} 28-31 * * {_LAST_DAY_TEST}"]
    if cadence.day <= 28:
        return [f"{minute} {hour} {cadence.day} * *"]
    short = ",".join(str(month) for month in _SHORT_MONTHS[cadence.day])
    days = "28" if cadence.day == 29 else f"28-{cadence.day - 1}"
    return [
        f"{minute} {hour} {cadence.day} * *",
        f"{minute} {hour} {days} {short} * {_LAST_DAY_TEST}",
    ]


def _cron_interval(job: Job, seconds: int) -> str:
    minutes, hours = seconds // 60, seconds // 3600
    if seconds % 60 == 0 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if seconds % 3600 == 0 and 24 % hours == 0:
        return f"0 */{hours} * * *" if hours < 24 else "0 0 * * *"
    raise ConfigError(
        f"{job.where}: cron cannot run every "
        f"{job.cadence.describe().removeprefix('every ')}: use whole minutes dividing an hour "
        "or hours dividing a day, or --format systemd"
    )


def systemd_units(jobs: Sequence[Job], inventory: Path, command: Sequence[str]) -> dict[str, str]:
    """File name -> content: a oneshot .service and its .timer for every job."""
    units: dict[str, str] = {}
    for job in jobs:
        name = unit_name(job)
        units[f"{name}.service"] = _service(job, inventory, command)
        units[f"{name}.timer"] = _timer(job, name)
    return units


def unit_name(job: Job) -> str:
    return "maint-" + _UNIT_UNSAFE.sub("_", job.name)


def on_calendar(job: Job) -> list[str]:
    """OnCalendar= expressions for a calendar job, or for an interval that divides a day."""
    cadence = job.cadence
    if isinstance(cadence, Interval):
        seconds = cadence.seconds
        if seconds < 60 and 60 % seconds == 0:
            return [f"*-*-* *:*:00/{seconds}"]
        if seconds % 60 == 0 and seconds < 3600 and 60 % (seconds // 60) == 0:
            return [f"*-*-* *:00/{seconds // 60}:00"]
        if seconds % 3600 == 0 and 24 % (seconds // 3600) == 0:
            return [f"*-*-* 00/{seconds // 3600}:00:00"]
        return []
    at = _clock(cadence.at) + (f" {job.zone_name}" if job.zone_name else "")
    if isinstance(cadence, Daily):
        return [f"*-*-* {at}"]
    if isinstance(cadence, Weekly):
        return [f"{WEEKDAYS[cadence.weekday][:3].title()} *-*-* {at}"]
    assert isinstance(cadence, Monthly)
    if cadence.day is None:
        return [f"*-*~01 {at}"]
    if cadence.day <= 28:
        return [f"*-*-{cadence.day:02d} {at}"]
    short = ",".join(f"{month:02d}" for month in _SHORT_MONTHS[cadence.day])
    return [f"*-*-{cadence.day:02d} {at}", f"*-{short}~01 {at}"]


def _service(job: Job, inventory: Path, command: Sequence[str]) -> str:
    lines = [
        "[Unit]",
        f"Description=maint job {job.name}: {job.task}, {job.describe()}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart="
        + " ".join(_systemd_quote(arg) for arg in job_command(job, inventory, command)),
    ]
    if job.timeout:
        lines.append(f"TimeoutStartSec={int(job.timeout.total_seconds())}s")
    return "\n".join(lines) + "\n"


def _timer(job: Job, name: str) -> str:
    lines = ["[Unit]", f"Description=Run {name}.service {job.describe()}", "", "[Timer]"]
    calendar = on_calendar(job)
    if calendar:
        lines += [f"OnCalendar={expression}" for expression in calendar]
        lines.append("Persistent=true")
    else:
        assert isinstance(job.cadence, Interval)  # only intervals lack a calendar
        seconds = job.cadence.seconds
        lines += [f"OnActiveSec={seconds}s", f"OnUnitActiveSec={seconds}s"]
    if isinstance(job.cadence, Interval):
        lines.append("AccuracySec=1s")
    if job.jitter.total_seconds() >= 1:
        lines.append(f"RandomizedDelaySec={int(job.jitter.total_seconds())}s")
    lines += ["", "[Install]", "WantedBy=timers.target"]
    return "\n".join(lines) + "\n"


def _clock(at: time) -> str:
    return f"{at:%H:%M:%S}"


def _systemd_quote(arg: str) -> str:
    """One ExecStart argument: specifiers (%) and variables ($) escaped, quoted if needed."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_SAFE.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
