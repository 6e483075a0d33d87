"""The schedule and the daemon's settings, validated once into frozen objects.

Everything comes from the inventory's `all.vars`: `schedule` (the list of jobs), `scheduler`
(catch-up window, stop grace, default time zone, history kept), `state_dir`, `state_dsn`,
`metrics` and `notify`. Every problem is reported together, each naming its job:
"schedule job 3 (db.vacuum): key 'day': ...".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ..errors import ConfigError
from ..inventory import load_inventory
from ..secrets import register_secret
from ..units import parse_duration
from .calendar import (
    WEEKDAYS,
    Cadence,
    Daily,
    Interval,
    Monthly,
    Weekly,
    jitter_offset,
    latest_slot,
    next_slot,
)
from .catalog import Catalog, find_task

JOB_KEYS = ("name", "task", "every", "at", "on", "day", "limit", "timezone", "jitter", "timeout")
JOB_KEYS += ("args",)
_CALENDAR_UNITS = {"day": "day", "daily": "day", "week": "week", "weekly": "week"}
_CALENDAR_UNITS |= {"month": "month", "monthly": "month"}
_AT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")

# The runbooks' checklists; jobs whose task does not exist (yet) are left out.
DEFAULT_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"task": "backup.db", "every": "day", "at": "02:00"},
    {"task": "backup.globals", "every": "day", "at": "02:00"},
    {"task": "backup.prune", "every": "day", "at": "04:00"},
    {"task": "health.check", "every": "day", "at": "07:00"},
    {"task": "db.vacuum", "every": "week", "on": "sunday", "at": "03:00"},
    {"task": "db.reindex", "every": "week", "on": "sunday", "at": "04:00"},
    {"task": "db.bloat", "every": "week", "on": "sunday", "at": "05:00"},
    {"task": "restore.verify", "every": "week", "on": "sunday", "at": "06:00"},
    {"task": "db.analyze", "every": "month", "day": 1, "at": "03:00"},
    {"task": "db.unused_indexes", "every": "month", "day": 1, "at": "04:00"},
    {"task": "certs.check", "every": "month", "day": 1, "at": "05:00"},
    {"task": "logs.clean", "every": "month", "day": 1, "at": "05:30"},
)
DEFAULT_CATCH_UP = timedelta(hours=6)
DEFAULT_STOP_GRACE = timedelta(minutes=5)
DEFAULT_HISTORY = timedelta(days=90)


@dataclass(frozen=True)
class Job:
    """One scheduled job: which task, when, on which hosts, with which extra flags."""

    number: int  # position in the schedule list, from 1, for messages
    name: str  # unique; the task, or the task @ limit, unless set
    task: str  # canonical invoke name
    cadence: Cadence
    zone: tzinfo
    limit: str | None = None
    jitter: timedelta = timedelta(0)
    timeout: timedelta | None = None
    args: tuple[str, ...] = ()

    def next_slot(self, after: datetime) -> datetime:
        return next_slot(self.cadence, self.zone, after)

    def latest_slot(self, now: datetime) -> datetime:
        return latest_slot(self.cadence, self.zone, now)

    def fire_time(self, slot: datetime) -> datetime:
        """When the run of SLOT really starts: the slot plus this job's stable jitter."""
        return slot + jitter_offset(self.name, slot, self.jitter)

    @property
    def zone_name(self) -> str | None:
        """The IANA name of an explicit time zone; None for the machine's local time."""
        key = getattr(self.zone, "key", None)
        return None if key in (None, "localtime") else str(key)

    def describe(self) -> str:
        when = self.cadence.describe()
        if self.zone_name and not isinstance(self.cadence, Interval):
            when += f" {self.zone_name}"
        return when


@dataclass(frozen=True)
class Notify:
    webhook_url: str | None = None
    webhook_format: str = "slack"  # or "json"
    heartbeat_url: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class Settings:
    """Everything the daemon and the schedule.* tasks need, from one inventory."""

    inventory: Path  # absolute, because jobs run from any working directory
    jobs: tuple[Job, ...]
    default_schedule: bool
    state_dir: Path
    state_dsn: str | None = None
    catch_up: timedelta = DEFAULT_CATCH_UP
    stop_grace: timedelta = DEFAULT_STOP_GRACE
    history: timedelta = DEFAULT_HISTORY
    metrics_listen: tuple[str, int] | None = None
    notify: Notify = Notify()


def load_settings(
    inventory: str | Path, catalog: Catalog, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read and validate the schedule of INVENTORY against the tasks of CATALOG.

    Raise ConfigError listing every problem found.
    """
    environ = os.environ if environ is None else environ
    path = Path(inventory).absolute()
    load_inventory(path)  # validates the inventory and registers its secrets
    variables = _all_vars(path)
    problems: list[str] = []
    scheduler = _mapping(variables, "scheduler", problems)
    default_zone = _zone(scheduler.get("timezone"), "key 'scheduler.timezone'", problems)
    raw_jobs = variables.get("schedule")
    default_schedule = raw_jobs is None
    if default_schedule:
        raw_jobs = [job for job in DEFAULT_SCHEDULE if find_task(catalog, job["task"])]
    jobs = _jobs(raw_jobs, catalog, default_zone or local_zone(environ), problems)
    settings = Settings(
        inventory=path,
        jobs=jobs,
        default_schedule=default_schedule,
        state_dir=state_dir(variables, environ),
        state_dsn=_optional_text(variables.get("state_dsn")),
        catch_up=_duration(scheduler, "catch_up", DEFAULT_CATCH_UP, problems),
        stop_grace=_duration(scheduler, "stop_grace", DEFAULT_STOP_GRACE, problems),
        history=_duration(scheduler, "history", DEFAULT_HISTORY, problems),
        metrics_listen=_listen(_mapping(variables, "metrics", problems).get("listen"), problems),
        notify=_notify(_mapping(variables, "notify", problems), problems),
    )
    if problems:
        raise ConfigError(f"{path}: invalid schedule:\n  " + "\n  ".join(problems))
    return settings


def state_dir(variables: Mapping[str, Any], environ: Mapping[str, str]) -> Path:
    """MAINT_STATE_DIR, else the `state_dir` var, else the per-user XDG state directory."""
    chosen = environ.get("MAINT_STATE_DIR") or variables.get("state_dir")
    if chosen:
        return Path(str(chosen)).expanduser()
    xdg = environ.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path(environ.get("HOME") or Path.home()) / ".local" / "state"
    return base / "maint"


def local_zone(environ: Mapping[str, str]) -> tzinfo:
    """The machine's time zone (TZ, else /etc/localtime), as cron and systemd timers use it."""
    key = environ.get("TZ", "").lstrip(":")
    if key:
        try:
            return ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as localtime:
            return ZoneInfo.from_file(localtime, key="localtime")
    except (OSError, ValueError):
        return UTC


def _all_vars(path: Path) -> Mapping[str, Any]:
    # load_inventory merges all.vars into each host; the schedule is the inventory's, not a
    # host's, so it is read from all.vars itself (the file has just been validated).
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    group = document.get("all") or {}
    return group.get("vars") or {}


def _jobs(raw: Any, catalog: Catalog, default_zone: tzinfo, problems: list[str]) -> tuple[Job, ...]:
    if not isinstance(raw, list):
        problems.append(f"key 'schedule': expected a list of jobs, got {type(raw).__name__}")
        return ()
    jobs: list[Job] = []
    for number, entry in enumerate(raw, start=1):
        job_problems: list[str] = []
        job = _job(number, entry, catalog, default_zone, job_problems)
        label = entry.get("task") if isinstance(entry, Mapping) else None
        where = f"schedule job {number}" + (f" ({label})" if label else "")
        problems.extend(f"{where}: {problem}" for problem in job_problems)
        if job is None:
            continue
        clash = next((other for other in jobs if other.name == job.name), None)
        if clash:
            problems.append(
                f"{where}: name {job.name!r} is also job {clash.number}'s; give one a 'name'"
            )
        jobs.append(job)
    return tuple(jobs)


def _job(
    number: int, entry: Any, catalog: Catalog, default_zone: tzinfo, problems: list[str]
) -> Job | None:
    if not isinstance(entry, Mapping):
        problems.append(f"expected a mapping with task and every, got {type(entry).__name__}")
        return None
    # YAML 1.1 reads an unquoted `on:` key as the boolean true.
    entry = {("on" if key is True else key): value for key, value in entry.items()}
    for key in entry:
        if key not in JOB_KEYS:
            problems.append(f"unknown key {key!r} (expected one of: {', '.join(JOB_KEYS)})")
    spec = None
    task = entry.get("task")
    if not task:
        problems.append("key 'task' is missing")
    else:
        spec = find_task(catalog, str(task))
        if spec is None:
            problems.append(f"key 'task': unknown task {task!r} (tasks: {', '.join(catalog)})")
    cadence = _cadence(entry, problems)
    zone = _zone(entry.get("timezone"), "key 'timezone'", problems) or default_zone
    jitter = _duration(entry, "jitter", timedelta(0), problems)
    timeout = _duration(entry, "timeout", None, problems)
    limit = _optional_text(entry.get("limit"))
    args = entry.get("args") or {}
    argv: tuple[str, ...] = ()
    if not isinstance(args, Mapping):
        problems.append(f"key 'args': expected a mapping of flags, got {type(args).__name__}")
    elif spec is not None:
        try:
            argv = spec.argv(args)
        except ConfigError as exc:
            problems.append(f"key 'args': {exc}")
    if spec is None or cadence is None or problems:
        return None
    name = _optional_text(entry.get("name")) or spec.name + (f"@{limit}" if limit else "")
    return Job(number, name, spec.name, cadence, zone, limit, jitter, timeout, argv)


def _cadence(entry: Mapping[str, Any], problems: list[str]) -> Cadence | None:
    every = entry.get("every")
    if every is None:
        problems.append("key 'every' is missing (day, week, month or an interval like 15m)")
        return None
    unit = _CALENDAR_UNITS.get(str(every).strip().lower())
    allowed = {"day": {"at"}, "week": {"at", "on"}, "month": {"at", "day"}}.get(unit or "", set())
    for key in ("at", "on", "day"):
        if key in entry and key not in allowed:
            problems.append(f"key {key!r}: {_only_for(key)}, not with every {every!r}")
    if unit is None:
        try:
            seconds = parse_duration(every, "key 'every'").total_seconds()
        except ConfigError as exc:
            problems.append(f"{exc} or day, week, month")
            return None
        if seconds < 1 or seconds != int(seconds):
            problems.append(f"key 'every': an interval is whole seconds, at least 1s; got {every}")
            return None
        return Interval(int(seconds))
    at = _at(entry.get("at", "00:00"), problems)
    if at is None:
        return None
    if unit == "week":
        weekday = _weekday(entry.get("on", "monday"), problems)
        return None if weekday is None else Weekly(weekday, at)
    if unit == "month":
        day = entry.get("day", 1)
        if str(day).strip().lower() == "last":
            return Monthly(None, at)
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
            problems.append(f"key 'day': expected a day of the month 1..31 or 'last', got {day!r}")
            return None
        return Monthly(day, at)
    return Daily(at)


def _only_for(key: str) -> str:
    return {
        "at": "a time of day is only for every day, week or month",
        "on": "a weekday is only for every week",
        "day": "a day of the month is only for every month",
    }[key]


def _at(value: Any, problems: list[str]) -> time | None:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 02:30 as the sexagesimal number 150.
        value = f"{value // 60}:{value % 60:02d}"
    match = _AT.fullmatch(str(value).strip())
    if match:
        hour, minute, second = (int(part or 0) for part in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    problems.append(f"key 'at': expected a time of day HH:MM, got {value!r}")
    return None


def _weekday(value: Any, problems: list[str]) -> int | None:
    text = str(value).strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if text in (name, name[:3]):
            return index
    problems.append(f"key 'on': expected a weekday like sunday or sun, got {value!r}")
    return None


def _zone(value: Any, what: str, problems: list[str]) -> tzinfo | None:
    if value is None:
        return None
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{what}: unknown time zone {value!r} (e.g. UTC, Europe/Berlin)")
        return None


def _duration(
    where: Mapping[str, Any], key: str, default: timedelta | None, problems: list[str]
) -> Any:
    value = where.get(key)
    if value is None:
        return default
    try:
        return parse_duration(value, f"key {key!r}")
    except ConfigError as exc:
        problems.append(str(exc))
        return default


def _mapping(variables: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = variables.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"key {key!r}: expected a mapping, got {type(value).__name__}")
        return {}
    return value


def _listen(value: Any, problems: list[str]) -> tuple[str, int] | None:
    if value is None or value is False:
        return None
    address, _, port = str(value).rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(f"key 'metrics.listen': expected ADDRESS:PORT, got {value!r}")
        return None
    return (address or "127.0.0.1", int(port))


def _notify(raw: Mapping[str, Any], problems: list[str]) -> Notify:
    webhook_format = str(raw.get("webhook_format", "slack"))
    if webhook_format not in ("slack", "json"):
        problems.append(
            f"key 'notify.webhook_format': expected slack or json, got {webhook_format!r}"
        )
    urls = {}
    for key in ("webhook_url", "heartbeat_url"):
        url = _optional_text(raw.get(key))
        if url and not url.startswith(("http://", "https://")):
            problems.append(f"key 'notify.{key}': expected an http(s) URL")
            url = None
        if url:
            register_secret(url)  # the URL itself is the credential
        urls[key] = url
    timeout = _duration(raw, "timeout", timedelta(seconds=10), problems)
    return Notify(
        webhook_url=urls["webhook_url"],
        webhook_format=webhook_format,
        heartbeat_url=urls["heartbeat_url"],
        timeout=timeout.total_seconds(),
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
