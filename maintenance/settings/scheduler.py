"""The scheduler's keys: `schedule` (its jobs), `scheduler`, `notify` and `metrics`.

They belong in `all.vars` (the schedule is the inventory's, not a host's); all.vars reach every
host, so they are validated with each host's settings and a problem is said once, for group
'all'. Set on a host or in a child group they would do nothing, so they are refused there
(validate.misplaced). Whether a job's task exists is the scheduler's to check: this layer
knows no tasks.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from .durations import duration_words, parse_duration
from .types import Duration, Section, Text, Timeout

# The keys only the scheduler daemon reads, and only from all.vars (a dotted one: that key of
# its section; `metrics.textfile_dir` is read per host). Set anywhere else they would do nothing.
ALL_VARS_ONLY = ("schedule", "scheduler", "notify", "state_dir", "state_dsn", "metrics.listen")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CALENDAR_UNITS = {"day": "day", "daily": "day", "week": "week", "weekly": "week"}
CALENDAR_UNITS |= {"month": "month", "monthly": "month"}
# notify.repeat: a reminder more often than every second is a flood, and one less often than
# a year is never; leaving alerts unrepeated is not offered (a forgotten alert stays forgotten).
MIN_REPEAT, MAX_REPEAT = timedelta(seconds=1), timedelta(days=365)
_AT = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
# Which keys each calendar cadence takes, and what a misplaced one is for.
_TAKES = {"day": {"at"}, "week": {"at", "on"}, "month": {"at", "day"}}
_ONLY_FOR = {
    "at": "a time of day is only for every day, week or month",
    "on": "a weekday is only for every week",
    "day": "a day of the month is only for every month",
}


def _every(value: Any) -> str | int:
    """'day', 'week', 'month', or an interval in whole seconds (at least 1s)."""
    if isinstance(value, str) and value.strip().lower() in CALENDAR_UNITS:
        return CALENDAR_UNITS[value.strip().lower()]
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError:
        raise ValueError(
            f"expected day, week, month or an interval like 15min or 6h, got {value!r}"
        ) from None
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"an interval is whole seconds, at least 1s; got {value!r}")
    return int(seconds)


def _at(value: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 02:30 as the sexagesimal number 150.
        value = f"{value // 60}:{value % 60:02d}"
    if isinstance(value, time):
        return value
    match = _AT.fullmatch(str(value).strip())
    if match:
        hour, minute, second = (int(part or 0) for part in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    raise ValueError(f"expected a time of day HH:MM, got {value!r}")


def _weekday(value: Any) -> str:
    text = str(value).strip().lower()
    for name in WEEKDAYS:
        if text in (name, name[:3]):
            return name
    raise ValueError(f"expected a weekday like sunday or sun, got {value!r}")


def _day(value: Any) -> int | str:
    if isinstance(value, str) and value.strip().lower() == "last":
        return "last"
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 31:
        return value
    raise ValueError(f"expected a day of the month 1..31 or 'last', got {value!r}")


def _zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
    return str(value)


def _listen(value: Any) -> str | None:
    """'ADDRESS:PORT' (a bare port listens on 127.0.0.1); false or empty: no endpoint."""
    if value is None or value is False or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected ADDRESS:PORT, got {value!r}")
    address, _, port = str(value).rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected ADDRESS:PORT, got {value!r}")
    return f"{address or '127.0.0.1'}:{int(port)}"


def _http_url(value: Any) -> Any:
    # The URL is a credential (its path holds the token): never repeat it in a message.
    if isinstance(value, str) and value and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http(s) URL")
    return value or None


def _apprise_url(value: Any) -> Any:
    """SCHEME://...: the shape of an Apprise URL. Whether Apprise can use it is checked by the
    tasks that send or schedule (scheduler.channels.url_problems), so the others never load
    Apprise. The URL holds credentials: a refusal never repeats it."""
    if not isinstance(value, str):
        return value  # the str type says what was expected
    if not value.strip():
        raise ValueError("must not be empty")
    scheme, separator, _ = value.strip().partition("://")
    if not separator or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise ValueError("expected an Apprise URL such as mailto://… or json://…")
    return value.strip()


def _listed(value: Any) -> Any:
    """One URL stands for a list of it; a refusal of a string would repeat the secret."""
    return [value] if isinstance(value, str) else value


def _repeat(value: timedelta) -> timedelta:
    if not MIN_REPEAT <= value <= MAX_REPEAT:
        raise ValueError(
            f"expected between {duration_words(MIN_REPEAT)} and {duration_words(MAX_REPEAT)},"
            f" got {duration_words(value)}"
        )
    return value


Every = Annotated[
    str | int,
    BeforeValidator(_every),
    WithJsonSchema(
        {"anyOf": [{"enum": ["day", "week", "month", "daily", "weekly", "monthly"]},
                   {"type": "string"}, {"type": "number", "exclusiveMinimum": 0}],
         "x-type": "day, week, month or an interval"}
    ),
]  # fmt: skip
TimeOfDay = Annotated[
    time,
    BeforeValidator(_at),
    WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$", "x-type": "HH:MM"}),
]
Weekday = Annotated[
    str,
    BeforeValidator(_weekday),
    WithJsonSchema({"type": "string", "x-type": "weekday", "examples": ["sunday", "sun"]}),
]
MonthDay = Annotated[
    int | str,
    BeforeValidator(_day),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 31}, {"const": "last"}],
         "x-type": "1..31 or last"}
    ),
]  # fmt: skip
Zone = Annotated[str, BeforeValidator(_zone), WithJsonSchema({"type": "string", "x-type": "zone"})]
Listen = Annotated[
    str | None,
    BeforeValidator(_listen),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"const": False}],
         "x-type": "ADDRESS:PORT"}
    ),
]  # fmt: skip
AppriseUrl = Annotated[
    str,
    BeforeValidator(_apprise_url),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9+.-]*://",
                    "x-type": "Apprise URL"}),
]  # fmt: skip
Repeat = Annotated[Duration, AfterValidator(_repeat)]
HttpUrl = Annotated[
    str | None,
    BeforeValidator(_http_url),
    WithJsonSchema({"type": "string", "pattern": "^https?://", "x-type": "http(s) URL"}),
]


class ScheduleJob(Section):
    """One job of the schedule: which task, when, on which hosts, with which flags."""

    name: Text | None = Field(
        None, description="unique job name (default: the task, or task@limit)"
    )
    task: Text = Field(
        description="the task to run, as `maint` names it", examples=["backup.db", "db.vacuum"]
    )
    every: Every = Field(
        description="day, week, month, or an interval such as 15min or 6h "
        "(m is minutes, a bare number seconds)",
        examples=["day", "week", "15min"],
    )
    at: TimeOfDay | None = Field(
        None,
        description="time of day for day, week and month cadences (default 00:00)",
        examples=["02:30"],
    )
    on: Weekday | None = Field(None, description="weekday for every week (default monday)")
    day: MonthDay | None = Field(
        None,
        description="day of the month for every month, or last (default 1); a day "
        "past a short month's end runs on its last day",
    )
    limit: Text | None = Field(None, description="host pattern, as --limit takes it")
    timezone: Zone | None = Field(
        None, description="IANA time zone of `at` (default: scheduler.timezone, else local)"
    )
    jitter: Duration = Field(
        timedelta(0),
        description="spread start times up to this much after the slot (stable per job and slot)",
        examples=["10min"],
    )
    timeout: Timeout | None = Field(
        None, description="stop a run past this long; 0 or unset: no limit", examples=["2h"]
    )
    args: dict[str, Any] = Field(
        default_factory=dict,
        description="the task's own flags, by name: {database: app, dry_run: true}",
    )
    heartbeat_url: HttpUrl = Field(
        None,
        description="this job's own healthchecks.io-style URL, instead of notify.heartbeat_url "
        "(a secret: never shown)",
        examples=["https://hc-ping.com/<ping-key>/backup-db"],
    )

    @model_validator(mode="before")
    @classmethod
    def _on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads an unquoted `on:` key as the boolean true.
        if isinstance(data, dict) and True in data:
            data = {("on" if key is True else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _keys_fit_the_cadence(self) -> ScheduleJob:
        unit = self.every if isinstance(self.every, str) else None
        misplaced = [
            f"{key!r}: {_ONLY_FOR[key]}, not with every {self.every if unit else 'interval'}"
            for key in ("at", "on", "day")
            if getattr(self, key) is not None and key not in _TAKES.get(unit or "", set())
        ]
        if misplaced:
            raise ValueError("; ".join(misplaced))
        return self


class SchedulerSettings(Section):
    """How the daemon runs the schedule."""

    timezone: Zone | None = Field(
        None,
        description="default IANA time zone of the jobs (default: the machine's)",
        examples=["Europe/Berlin"],
    )
    catch_up: Duration = Field(
        timedelta(hours=6),
        description="a run missed while the daemon was down is made up if its slot is at "
        "most this old; 0 turns catch-up off",
    )
    stop_grace: Duration = Field(
        timedelta(minutes=5), description="how long running jobs get to finish on shutdown"
    )
    history: Duration = Field(timedelta(days=90), description="how long run history is kept")


class NotifySettings(Section):
    """Who hears about state changes: Apprise channels, a chat webhook, a heartbeat monitor."""

    urls: Annotated[list[AppriseUrl], BeforeValidator(_listed)] = Field(
        default_factory=list,
        description="Apprise URLs alerted when a check or run changes state (mailto://, "
        "json://, slack://, ...: https://github.com/caronc/apprise/wiki); secrets: never shown",
        examples=[["mailto://user:password@smtp.example.com?to=ops@example.com"]],
    )
    repeat: Repeat = Field(
        timedelta(hours=24),
        description="while a check stays not OK, its alert is repeated this often "
        "(between 1s and 365d)",
        examples=["24h", "4h"],
    )
    webhook_url: HttpUrl = Field(
        None,
        description="posted to when a check or run changes state, as the urls are "
        "(a secret: never shown)",
        examples=["https://hooks.slack.com/services/..."],
    )
    webhook_format: Literal["slack", "json"] = Field(
        "slack", description='slack ({"text": ...}) or json (a structured document)'
    )
    heartbeat_url: HttpUrl = Field(
        None,
        description="healthchecks.io-style URL: /start at a run's start, the URL on success, "
        "/fail on failure; {job} in it is replaced by the job's name (URL-quoted), so each job "
        "has its own check; a job's own heartbeat_url wins (a secret: never shown)",
        examples=["https://hc-ping.com/<ping-key>/{job}"],
    )
    timeout: Timeout = Field(
        10, gt=0, description="seconds to wait for each channel, webhook or heartbeat"
    )


class MetricsSettings(Section):
    """Prometheus metrics: the daemon's endpoint and a node_exporter textfile."""

    listen: Listen = Field(
        None,
        description="the daemon serves /metrics here: ADDRESS:PORT, or a port on 127.0.0.1",
        examples=["127.0.0.1:9187"],
    )
    textfile_dir: Text | None = Field(
        None,
        description="every task writes maint_<task>.prom here for node_exporter's "
        "textfile collector",
        examples=["/var/lib/prometheus/node-exporter"],
    )

    @property
    def address(self) -> tuple[str, int] | None:
        """`listen` as (address, port), None when no endpoint is asked for."""
        if self.listen is None:
            return None
        address, _, port = self.listen.rpartition(":")
        return address, int(port)
