"""The schedule and the daemon's settings, assembled once from the inventory's `all.vars`.

The settings model has already checked every key's shape (`schedule`, `scheduler`, `notify`,
`metrics`, `state_dir`, `state_dsn`); what is left here needs the live task tree: that each
job's task exists, that its `args` are flags of that task with values the task accepts (read
by the task's own code, through the catalog, on the hosts the job targets: a job that would
exit 2 at every run, such as a job.run of a name no host defines, is refused now), and that
job names are unique; or Apprise: that it can use each of `notify.urls` (loading its plugins
costs about 0.3 s, paid only by the tasks that read this module, not by every task).
Problems use the model's key paths: "group 'all': schedule[2].task: unknown task 'db.nope'".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from ..inventory import Inventory, load_inventory
from ..secrets import register_secret
from ..settings.host import HostSettings
from ..settings.scheduler import WEEKDAYS, NotifySettings, ScheduleJob
from ..settings.validate import SettingsError, parse_group
from .calendar import (
    Cadence,
    Daily,
    Interval,
    Monthly,
    Weekly,
    jitter_offset,
    latest_slot,
    next_slot,
)
from .catalog import ArgError, Catalog, find_task
from .channels import url_problems

# The keys the daemon reads, all from all.vars.
DAEMON_KEYS = ("schedule", "scheduler", "notify", "metrics", "state_dir", "state_dsn")

# The runbooks' checklist (docs/scheduler.md says which runbook line each job comes from);
# jobs whose task does not exist (yet) are left out. Clock times differ per job, so the jobs
# of one host do not pile up (backup.globals is seconds long and shares backup.db's 02:00);
# health.check's 15 minutes are aligned on the epoch (:00, :15, :30, :45 UTC).
DEFAULT_SCHEDULE: tuple[dict[str, Any], ...] = (
    {"task": "health.check", "every": "15min"},
    {"task": "db.purge", "every": "month", "day": 1, "at": "01:00"},
    {"task": "backup.db", "every": "day", "at": "02:00"},
    {"task": "backup.globals", "every": "day", "at": "02:00"},
    {"task": "db.vacuum", "every": "week", "on": "sunday", "at": "03:00"},
    {"task": "db.analyze", "every": "week", "on": "sunday", "at": "03:30"},
    {"task": "backup.prune", "every": "day", "at": "04:00"},
    {"task": "db.reindex", "every": "week", "on": "sunday", "at": "04:30"},
    {"task": "db.bloat", "every": "week", "on": "sunday", "at": "05:00"},
    {"task": "logs.rotate", "every": "day", "at": "05:30"},
    {"task": "logs.clean", "every": "day", "at": "05:45"},
    {"task": "restore.verify", "every": "week", "on": "sunday", "at": "06:00"},
    {"task": "certs.check", "every": "day", "at": "06:30"},
    {"task": "db.unused_indexes", "every": "month", "day": 1, "at": "07:00"},
)


@dataclass(frozen=True)
class Job:
    """One scheduled job: which task, when, on which hosts, with which extra flags."""

    index: int  # position in the schedule list, from 0, as key paths say it: schedule[2]
    name: str  # unique; the task, or the task @ limit, unless set
    task: str  # canonical invoke name
    cadence: Cadence
    zone: tzinfo
    limit: str | None = None
    jitter: timedelta = timedelta(0)
    timeout: timedelta | None = None
    args: tuple[str, ...] = ()
    heartbeat_url: str | None = None  # the job's own; else notify.heartbeat_url (a template)

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

    @property
    def where(self) -> str:
        """'schedule[2] (db.vacuum)': the job in messages."""
        return f"schedule[{self.index}] ({self.task})"

    def describe(self) -> str:
        when = self.cadence.describe()
        if self.zone_name and not isinstance(self.cadence, Interval):
            when += f" {self.zone_name}"
        return when


@dataclass(frozen=True)
class Settings:
    """Everything the daemon and the schedule.* tasks need, from one inventory."""

    inventory: Path  # absolute, because jobs run from any working directory
    jobs: tuple[Job, ...]
    default_schedule: bool
    state_dir: Path
    state_dsn: str | None = None
    catch_up: timedelta = timedelta(hours=6)
    stop_grace: timedelta = timedelta(minutes=5)
    history: timedelta = timedelta(days=90)
    metrics_listen: tuple[str, int] | None = None
    notify: NotifySettings = field(default_factory=NotifySettings)


def load_settings(
    inventory: str | Path,
    catalog: Catalog,
    environ: Mapping[str, str] | None = None,
    *,
    check_urls: bool = True,
) -> Settings:
    """Read the schedule of INVENTORY and check it against the tasks of CATALOG.

    CHECK_URLS: ask Apprise whether it can use each of notify.urls (the daemon has a forked
    child do it, to stay without Apprise). Raise ConfigError listing every problem found.
    """
    environ = os.environ if environ is None else environ
    path = Path(inventory).absolute()
    loaded = load_inventory(path)  # validates every host, all.vars included; registers secrets
    try:
        keys = parse_group(
            str(path), "all", {k: v for k, v in loaded.vars.items() if k in DAEMON_KEYS}
        )
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    _register_urls(keys.notify)
    zone = ZoneInfo(keys.scheduler.timezone) if keys.scheduler.timezone else local_zone(environ)
    problems = url_problems(keys.notify.urls) if check_urls else []
    jobs = _jobs(_schedule(keys, catalog), catalog, zone, problems, loaded)
    if problems:
        raise ConfigError(
            "invalid schedule:\n  " + "\n  ".join(f"{path}: group 'all': {p}" for p in problems)
        )
    return Settings(
        inventory=path,
        jobs=jobs,
        default_schedule=keys.schedule is None,
        state_dir=state_dir(keys.state_dir, environ),
        state_dsn=keys.state_dsn,
        catch_up=keys.scheduler.catch_up,
        stop_grace=keys.scheduler.stop_grace,
        history=keys.scheduler.history,
        metrics_listen=keys.metrics.address,
        notify=keys.notify,
    )


def load_notify(inventory: str | Path) -> NotifySettings:
    """The `notify` settings of INVENTORY's all.vars, their URLs registered as secrets.

    Raise ConfigError listing every problem of the inventory.
    """
    path = Path(inventory).absolute()
    loaded = load_inventory(path)
    try:
        keys = parse_group(str(path), "all", {"notify": loaded.vars.get("notify") or {}})
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    _register_urls(keys.notify)
    problems = url_problems(keys.notify.urls)
    if problems:
        raise ConfigError(
            "invalid notify settings:\n  "
            + "\n  ".join(f"{path}: group 'all': {problem}" for problem in problems)
        )
    return keys.notify


def _register_urls(notify: NotifySettings) -> None:
    for url in (notify.webhook_url, notify.heartbeat_url, *notify.urls):
        if url:
            register_secret(url)  # the URL itself is the credential


def state_dir(chosen: str | None, environ: Mapping[str, str]) -> Path:
    """MAINT_STATE_DIR, else the `state_dir` var (CHOSEN), else the per-user XDG directory."""
    chosen = environ.get("MAINT_STATE_DIR") or chosen
    if chosen:
        return Path(chosen).expanduser()
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


def _schedule(keys: HostSettings, catalog: Catalog) -> list[ScheduleJob]:
    """The inventory's jobs, else the default runbook schedule's jobs whose task exists."""
    if keys.schedule is not None:
        return keys.schedule
    known = [job for job in DEFAULT_SCHEDULE if find_task(catalog, job["task"])]
    return [ScheduleJob.model_validate(job) for job in known]


def _jobs(
    entries: list[ScheduleJob],
    catalog: Catalog,
    default_zone: tzinfo,
    problems: list[str],
    inventory: Inventory,
) -> tuple[Job, ...]:
    jobs: list[Job] = []
    for index, entry in enumerate(entries):
        job = _job(index, entry, catalog, default_zone, problems, inventory)
        if job is None:
            continue
        clash = next((other for other in jobs if other.name == job.name), None)
        if clash:
            problems.append(
                f"schedule[{index}].name: {job.name!r} is also schedule[{clash.index}]'s; "
                "give one a 'name'"
            )
        jobs.append(job)
    return tuple(jobs)


def _job(
    index: int,
    entry: ScheduleJob,
    catalog: Catalog,
    default_zone: tzinfo,
    problems: list[str],
    inventory: Inventory,
) -> Job | None:
    spec = find_task(catalog, entry.task)
    if spec is None:
        problems.append(
            f"schedule[{index}].task: unknown task {entry.task!r} (tasks: {', '.join(catalog)})"
        )
        return None
    try:
        argv = spec.checked_argv(entry.args, inventory, entry.limit)
    except ArgError as exc:
        problems.append(f"schedule[{index}].args.{exc.key}: {exc.words}")
        return None
    except ConfigError as exc:
        problems.append(f"schedule[{index}].args: {exc}")
        return None
    return Job(
        index=index,
        name=entry.name or spec.name + (f"@{entry.limit}" if entry.limit else ""),
        task=spec.name,
        cadence=cadence(entry),
        zone=ZoneInfo(entry.timezone) if entry.timezone else default_zone,
        limit=entry.limit,
        jitter=entry.jitter,
        timeout=timedelta(seconds=entry.timeout) if entry.timeout else None,
        args=argv,
        heartbeat_url=entry.heartbeat_url,
    )


def cadence(entry: ScheduleJob) -> Cadence:
    """The calendar rule of a validated job: defaults at 00:00, on monday, on day 1."""
    if isinstance(entry.every, int):
        return Interval(entry.every)
    at = entry.at or time(0)
    if entry.every == "week":
        return Weekly(WEEKDAYS.index(entry.on or "monday"), at)
    if entry.every == "month":
        return Monthly(None if entry.day == "last" else int(entry.day or 1), at)
    return Daily(at)
