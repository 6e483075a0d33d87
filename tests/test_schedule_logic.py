"""Schedule arithmetic, validation and exports, with an injected clock: no daemon needed."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from invoke import Collection, task
from prometheus_client import generate_latest

from maintenance.cli.collection import build_namespace
from maintenance.errors import ConfigError
from maintenance.scheduler import export
from maintenance.scheduler.calendar import (
    Daily,
    Interval,
    Monthly,
    Weekly,
    latest_slot,
    next_slot,
    upcoming,
)
from maintenance.scheduler.catalog import catalog_from
from maintenance.scheduler.channels import masked_url
from maintenance.scheduler.child import outcome_from
from maintenance.scheduler.config import load_settings
from maintenance.scheduler.metrics import SchedulerMetrics, detail_figures, write_textfile
from tests.inventories import write_inventory

BERLIN = ZoneInfo("Europe/Berlin")
CATALOG = catalog_from(build_namespace())


def at(text: str, zone=UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def local(slots: list[datetime], zone=UTC) -> list[str]:
    return [slot.astimezone(zone).strftime("%Y-%m-%d %H:%M %a") for slot in slots]


# --- calendar -----------------------------------------------------------------------------


def test_monthly_day_31_falls_on_the_last_day_of_short_months() -> None:
    """Day 31 runs on Feb 28, Feb 29 in a leap year, Apr 30: once every month, never skipped."""
    slots = upcoming(Monthly(31, time(2)), UTC, at("2023-12-31 03:00"), 6)
    assert local(slots) == [
        "2024-01-31 02:00 Wed",
        "2024-02-29 02:00 Thu",
        "2024-03-31 02:00 Sun",
        "2024-04-30 02:00 Tue",
        "2024-05-31 02:00 Fri",
        "2024-06-30 02:00 Sun",
    ]


def test_monthly_last_day_and_day_29_in_february() -> None:
    """'last' is the month's last day; day 29 is Feb 28 in common years and Feb 29 in leap ones."""
    assert local(upcoming(Monthly(None, time(5)), UTC, at("2023-01-15"), 3)) == [
        "2023-01-31 05:00 Tue",
        "2023-02-28 05:00 Tue",
        "2023-03-31 05:00 Fri",
    ]
    common = next_slot(Monthly(29, time(0)), UTC, at("2023-02-01"))
    leap = next_slot(Monthly(29, time(0)), UTC, at("2024-02-01"))
    assert (common.date().isoformat(), leap.date().isoformat()) == ("2023-02-28", "2024-02-29")


def test_weekly_runs_on_the_weekday_in_its_time_zone() -> None:
    """Sunday 03:00 Berlin is 02:00 UTC in winter and 01:00 UTC in summer."""
    winter = next_slot(Weekly(6, time(3)), BERLIN, at("2024-01-01 12:00"))
    summer = next_slot(Weekly(6, time(3)), BERLIN, at("2024-07-01 12:00"))
    assert winter == at("2024-01-07 02:00")
    assert summer == at("2024-07-07 01:00")


def test_a_slot_equal_to_now_is_not_next_but_latest() -> None:
    now = at("2024-03-05 02:00")
    assert next_slot(Daily(time(2)), UTC, now) == at("2024-03-06 02:00")
    assert latest_slot(Daily(time(2)), UTC, now) == now


def test_daily_time_in_the_spring_gap_runs_after_it_once() -> None:
    """02:30 does not exist in Berlin on 2024-03-31: the run is at 03:30 CEST, once."""
    slots = upcoming(Daily(time(2, 30)), BERLIN, at("2024-03-30 12:00"), 3)
    assert local(slots, BERLIN) == [
        "2024-03-31 03:30 Sun",
        "2024-04-01 02:30 Mon",
        "2024-04-02 02:30 Tue",
    ]


def test_daily_time_repeated_in_autumn_runs_once() -> None:
    """02:30 happens twice in Berlin on 2024-10-27: the job runs at the first, not twice."""
    slots = upcoming(Daily(time(2, 30)), BERLIN, at("2024-10-26 12:00"), 2)
    assert slots == [at("2024-10-27 00:30"), at("2024-10-28 01:30")]


def test_intervals_align_on_the_epoch_so_daemons_agree() -> None:
    assert next_slot(Interval(900), UTC, at("2024-01-01 10:07:13")) == at("2024-01-01 10:15")
    assert latest_slot(Interval(900), UTC, at("2024-01-01 10:07:13")) == at("2024-01-01 10:00")


CADENCES = st.one_of(
    st.builds(Interval, st.integers(1, 7 * 86400)),
    st.builds(Daily, st.times()),
    st.builds(Weekly, st.integers(0, 6), st.times()),
    st.builds(Monthly, st.one_of(st.none(), st.integers(1, 31)), st.times()),
)


@given(
    CADENCES,
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1)),
    st.sampled_from([UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]),
)
def test_latest_and_next_slot_bracket_now(cadence, naive, zone) -> None:
    """For any cadence and instant: latest <= now < next, and nothing lies between them."""
    now = naive.replace(tzinfo=UTC)
    latest, following = latest_slot(cadence, zone, now), next_slot(cadence, zone, now)
    assert latest <= now < following
    assert next_slot(cadence, zone, latest) == following
    if not isinstance(cadence, Interval):
        assert following - latest <= timedelta(days=31, hours=3)


# --- configuration ------------------------------------------------------------------------


def settings_for(tmp_path: Path, schedule=None, catalog=CATALOG, **all_vars):
    variables = {"state_dir": str(tmp_path / "state"), **all_vars}
    if schedule is not None:
        variables["schedule"] = schedule
    inventory = write_inventory(
        tmp_path / "inv.yaml", {"h": {"ansible_connection": "local"}}, all_vars=variables
    )
    return load_settings(inventory, catalog, environ={})


ALL = "group 'all': "


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"task": "db.nope", "every": "day"}, ALL + "schedule[0].task: unknown task 'db.nope'"),
        ({"task": "health.check", "every": "day", "at": "25:00"}, "[0].at: expected a time"),
        (
            {"task": "health.check", "every": "week", "day": 31},
            "schedule[0]: 'day': a day of the month is only for every month",
        ),
        ({"task": "health.check", "every": "month", "day": 32}, "[0].day: expected a day"),
        ({"task": "health.check", "every": "month", "on": "sun"}, "'on': a weekday is only"),
        (
            {"task": "health.check", "every": "week", "on": "someday"},
            "schedule[0].on: expected a weekday",
        ),
        ({"task": "health.check", "every": "fortnight"}, "schedule[0].every: expected day, week"),
        (
            {"task": "health.check", "every": "15m", "at": "02:00"},
            "schedule[0]: 'at': a time of day is only",
        ),
        ({"task": "health.check", "every": "day", "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"task": "health.check", "every": "day", "jitter": "soon"}, "schedule[0].jitter"),
        ({"task": "health.check", "every": "day", "args": {"nope": 1}}, "unknown flag 'nope'"),
        ({"task": "health.check", "every": "day", "args": {"json": True}}, "unknown flag 'json'"),
        ({"task": "health.check", "every": "day", "colour": "red"}, "unknown key 'colour'"),
        ({"task": "health.check", "evry": "day"}, "unknown key 'evry'; did you mean 'every'?"),
        ({"every": "day"}, "schedule[0].task: required key is missing"),
        # The values too, read by the task's own code when the schedule loads, not at each run.
        (
            {
                "task": "db.purge",
                "every": "day",
                "args": {"older_than": "12m", "table": "t", "column": "c"},
            },
            "schedule[0].args.older_than: ambiguous: write 12min or 12mo",
        ),
        (
            {"task": "db.vacuum", "every": "day", "args": {"lock_timeout": "99zz"}},
            "schedule[0].args.lock_timeout: unknown unit 'zz' in '99zz'",
        ),
        (
            {"task": "db.bloat", "every": "day", "args": {"top": "many"}},
            "schedule[0].args.top: expected a whole number, got 'many'",
        ),
        (
            {"task": "db.purge", "every": "day", "args": {"table": "t"}},
            "schedule[0].args: --table needs --column and --older-than",
        ),
        # Flags that override a section's keys go through those keys' types at load too.
        (
            {"task": "certs.check", "every": "day", "args": {"warn_days": "abc"}},
            "schedule[0].args.warn_days: expected a number, got 'abc'",
        ),
        (
            {"task": "health.check", "every": "15min", "args": {"long_query_seconds": "5pc"}},
            "schedule[0].args.long_query_seconds: unknown unit 'pc' in '5pc'",
        ),
        (
            {"task": "backup.prune", "every": "day", "args": {"keep_within": "12"}},
            "schedule[0].args.keep_within: ambiguous: write 12min or 12mo (or 12d)",
        ),
        (
            {"task": "backup.prune", "every": "day", "args": {"keep_daily": "-3"}},
            "schedule[0].args.keep_daily: expected at least -1",
        ),
    ],
)
def test_invalid_jobs_are_refused_naming_the_job(tmp_path: Path, job, message) -> None:
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path, [job])
    assert message in str(raised.value) and ALL.strip(": ") in str(raised.value)


def test_every_problem_is_reported_together(tmp_path: Path) -> None:
    schedule = [
        {"task": "health.check", "every": "day"},
        {"task": "db.nope", "every": "day"},
        {"task": "health.check", "every": "month", "day": 0},
        {"task": "health.check", "every": "day"},
    ]
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path, schedule)
    text = str(raised.value)
    assert "schedule[2].day: expected a day of the month" in text
    # The task catalog is checked once the shapes are right.
    schedule[2]["day"] = 1
    with pytest.raises(ConfigError) as raised:
        settings_for(tmp_path, schedule)
    text = str(raised.value)
    assert "schedule[1].task: unknown task 'db.nope'" in text
    assert "schedule[3].name: 'health.check' is also schedule[0]'s" in text


def test_valid_job_becomes_a_frozen_job_with_task_flags(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        [
            {
                "task": "health.check",
                "every": "week",
                True: "Sunday",  # what YAML makes of an unquoted `on:` key
                "at": "03:15",
                "timezone": "Europe/Berlin",
                "limit": "db*",
                "jitter": "5m",
                "args": {"disk_path": ["/", "/var"], "long_query_seconds": 60},
            }
        ],
    )
    (job,) = settings.jobs
    assert (job.name, job.task, job.cadence) == (
        "health.check@db*",
        "health.check",
        Weekly(6, time(3, 15)),
    )
    assert job.args == ("--disk-path", "/", "--disk-path", "/var", "--long-query-seconds", "60")
    assert job.jitter == timedelta(minutes=5) and job.zone_name == "Europe/Berlin"
    with pytest.raises(AttributeError):
        job.task = "other"  # type: ignore[misc]


def test_job_args_are_checked_by_building_the_plan_only(tmp_path: Path) -> None:
    """Valid args pass on a host with no database at all: checking builds a plan, runs none."""
    args = {"older-than": "90d", "table": "events", "column": "created", "dry_run": True}
    settings = settings_for(tmp_path, [{"task": "db.purge", "every": "day", "args": args}])
    (job,) = settings.jobs
    assert job.args == ("--older-than", "90d", "--table", "events", "--column", "created",
                        "--dry-run")  # fmt: skip

    # A collection without the CLI's checks (a task of plain invoke) has its flag names checked.
    @task
    def purge(c, older_than=None):
        """Purge."""

    catalog = catalog_from(Collection(Collection("db", purge)))
    settings = settings_for(
        tmp_path, [{"task": "db.purge", "every": "day", "args": {"older_than": "12m"}}], catalog
    )
    assert settings.jobs[0].args == ("--older-than", "12m")


def _misplaced_inventory(path: Path) -> Path:
    """Scheduler keys on a host, in a child group with hosts and in one without."""
    path.write_text(
        """
all:
  hosts:
    h1:
      ansible_connection: local
      schedule: [{task: health.check, every: 15min}]
      notify: {webhook_url: "https://hooks.example/services/T0/B0/x"}
      scheduler: {timezone: Europe/Berlin}
      metrics: {textfile_dir: /var/lib/node-exporter}
  children:
    databases:
      hosts: {h1: }
      vars: {state_dsn: "postgresql://maint@db1/maint", metrics: {listen: 9187}}
    scheduling:
      vars: {state_dir: /var/lib/maint}
"""
    )
    return path


MISPLACED = [
    "group 'databases': state_dsn: belongs in all.vars: the scheduler reads it there",
    "group 'databases': metrics.listen: belongs in all.vars",
    "group 'scheduling': state_dir: belongs in all.vars",
    "host 'h1': schedule: belongs in all.vars: the scheduler reads it there",
    "host 'h1': scheduler: belongs in all.vars",
    "host 'h1': notify: belongs in all.vars",
]


def test_scheduler_keys_outside_all_vars_are_refused_where_set(tmp_path: Path) -> None:
    """The daemon reads all.vars only: elsewhere the keys would be ignored, so they are refused
    when the inventory loads; metrics.textfile_dir stays a host's (every task writes it)."""
    inventory = _misplaced_inventory(tmp_path / "inv.yaml")
    with pytest.raises(ConfigError) as raised:
        load_settings(inventory, CATALOG, environ={})
    text = str(raised.value)
    for line in MISPLACED:
        assert f"{inventory}: {line}" in text
    assert "textfile_dir" not in text
    assert "hooks.example" not in text
    # Only there: the same keys in all.vars, and textfile_dir per host, are fine.
    all_vars = {"schedule": [], "notify": {"webhook_url": "https://hooks.example/x"},
                "metrics": {"listen": 9187}, "state_dir": str(tmp_path / "s")}  # fmt: skip
    inventory = write_inventory(
        tmp_path / "ok.yaml",
        {"h1": {"ansible_connection": "local", "metrics": {"textfile_dir": str(tmp_path)}}},
        all_vars=all_vars,
    )
    assert load_settings(inventory, CATALOG, environ={}).metrics_listen == ("127.0.0.1", 9187)


def test_default_schedule_keeps_only_tasks_that_exist(tmp_path: Path) -> None:
    """Without a schedule the runbook jobs apply, minus those whose task is not installed."""

    @task
    def vacuum(c, inventory=None):
        """Vacuum."""

    @task
    def check(c, inventory=None):
        """Check."""

    catalog = catalog_from(Collection(Collection("db", vacuum), Collection("health", check)))
    settings = settings_for(tmp_path, catalog=catalog)
    assert settings.default_schedule
    assert [(job.task, job.describe()) for job in settings.jobs] == [
        ("health.check", "every 15m"),
        ("db.vacuum", "every sunday at 03:00"),
    ]


# Issue 16, "the default schedule from the runbooks": each task and its cadence.
RUNBOOK_CADENCES = {
    "backup.db": Daily(time(2)),
    "backup.globals": Daily(time(2)),
    "backup.prune": Daily(time(4)),
    "health.check": Interval(15 * 60),
    "db.vacuum": Weekly(6, time(3)),
    "db.analyze": Weekly(6, time(3, 30)),
    "db.reindex": Weekly(6, time(4, 30)),
    "db.bloat": Weekly(6, time(5)),
    "restore.verify": Weekly(6, time(6)),
    "db.purge": Monthly(1, time(1)),
    "db.unused-indexes": Monthly(1, time(7)),  # invoke's spelling
    "certs.check": Daily(time(6, 30)),
    "logs.rotate": Daily(time(5, 30)),  # the runbooks rotate daily
    "logs.clean": Daily(time(5, 45)),
}


def test_default_schedule_is_the_runbooks_checklist(tmp_path: Path) -> None:
    """Every cadence of the runbooks' list, no other job, and no two jobs of a host at one
    time but the two backups (backup.globals takes seconds)."""
    settings = settings_for(tmp_path)
    assert settings.default_schedule
    assert {job.task: job.cadence for job in settings.jobs} == RUNBOOK_CADENCES
    assert len(settings.jobs) == len(RUNBOOK_CADENCES)
    assert all(job.limit is None and job.args == () for job in settings.jobs)
    by_time: dict[time, list[str]] = {}
    for job in settings.jobs:
        if not isinstance(job.cadence, Interval):
            by_time.setdefault(job.cadence.at, []).append(job.task)
    shared = [tasks for tasks in by_time.values() if len(tasks) > 1]
    assert shared == [["backup.db", "backup.globals"]]
    # The daily, weekly and monthly slots of one day never meet either: a Sunday the 1st.
    sunday_first = at("2026-11-01 00:00")
    assert sunday_first.weekday() == 6
    starts = [
        job.next_slot(sunday_first - timedelta(seconds=1))
        for job in settings.jobs
        if not isinstance(job.cadence, Interval)
    ]
    assert len(set(starts)) == len(starts) - 1


def test_state_dir_comes_from_environment_then_var_then_xdg(tmp_path: Path) -> None:
    from maintenance.scheduler.config import state_dir

    assert state_dir("/v", {"MAINT_STATE_DIR": "/e"}) == Path("/e")
    assert state_dir("/v", {}) == Path("/v")
    assert state_dir(None, {"XDG_STATE_HOME": "/x"}) == Path("/x/maint")
    assert state_dir(None, {"HOME": "/home/u"}) == Path("/home/u/.local/state/maint")


# --- exports ------------------------------------------------------------------------------

EXPORTED = [
    {"task": "health.check", "every": "day", "at": "02:30"},
    {"task": "health.check", "every": "week", "on": "sunday", "at": "03:00", "name": "weekly"},
    {"task": "health.check", "every": "month", "day": 1, "at": "04:00", "name": "monthly"},
    {"task": "health.check", "every": "month", "day": 31, "at": "05:00", "name": "day31"},
    {"task": "health.check", "every": "month", "day": "last", "at": "06:00", "name": "last"},
    {"task": "health.check", "every": "15m", "name": "often", "limit": "web", "jitter": "1m"},
    {"task": "health.check", "every": "week", "on": "sun", "at": "02:30", "name": "berlin"}
    | {"timezone": "Europe/Berlin"},
]


def test_crontab_lines_for_daily_weekly_monthly_and_last(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, EXPORTED)
    text = export.crontab(settings.jobs, settings.inventory, ["/usr/bin/maint"])
    inventory = settings.inventory
    lines = [line for line in text.splitlines() if line[:1].isdigit() or line.startswith("*")]
    command = f"/usr/bin/maint health.check --inventory {inventory}"
    last_day = '[ "$(date -d tomorrow +\\%d)" = 01 ] &&'
    assert lines == [
        f"30 2 * * * {command}",
        f"0 3 * * 0 {command}",
        f"0 4 1 * * {command}",
        f"0 5 31 * * {command}",
        f"0 5 28-30 2,4,6,9,11 * {last_day} {command}",
        f"0 6 28-31 * * {last_day} {command}",
        f"*/15 * * * * sleep $(shuf -i 0-59 -n 1); {command} --limit web",
        f"30 2 * * 0 {command}",
    ]
    assert "CRON_TZ=Europe/Berlin\n# schedule[6] (health.check) berlin" in text


def test_crontab_last_day_test_is_true_only_on_the_last_day() -> None:
    """The shell test in the crontab line, run with GNU date, picks the month's last day."""
    for day, expected in (("2024-02-28", 1), ("2024-02-29", 0), ("2023-02-28", 0)):
        done = subprocess.run(
            ["sh", "-c", f'[ "$(date -d "{day} + 1 day" +%d)" = 01 ]'], check=False
        )
        assert (done.returncode == 0) == (expected == 0), day


def test_cron_refuses_intervals_it_cannot_express(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, [{"task": "health.check", "every": "7m"}])
    with pytest.raises(ConfigError, match="cron cannot run every 7m"):
        export.crontab(settings.jobs, settings.inventory, ["maint"])


def test_systemd_units_are_valid_and_fire_when_the_daemon_would(tmp_path: Path) -> None:
    """Timers carry Persistent= and RandomizedDelaySec=; systemd computes the daemon's slots."""
    settings = settings_for(tmp_path, EXPORTED)
    units = export.systemd_units(settings.jobs, settings.inventory, [shutil.which("true")])
    weekly = units["maint-weekly.timer"]
    assert "OnCalendar=Sun *-*-* 03:00:00" in weekly and "Persistent=true" in weekly
    assert "RandomizedDelaySec=60s" in units["maint-often.timer"]
    assert "ExecStart=/usr/bin/true health.check --inventory" in units["maint-weekly.service"]
    assert "Type=oneshot" in units["maint-weekly.service"]
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return
    for name, content in units.items():
        (tmp_path / name).write_text(content)
    verify = subprocess.run(
        [tool, "verify", "--man=no", *sorted(map(str, tmp_path.glob("maint-*")))],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    for job in settings.jobs:
        if isinstance(job.cadence, Interval):
            continue
        expected = upcoming(job.cadence, job.zone, datetime.now(UTC), 4)
        assert _systemd_elapses(tool, export.on_calendar(job), 4) == expected, job.name


def _systemd_elapses(tool: str, expressions: list[str], count: int) -> list[datetime]:
    """The next COUNT times systemd would start a timer with these OnCalendar= lines."""
    times: set[datetime] = set()
    for expression in expressions:
        done = subprocess.run(
            [tool, "calendar", "--iterations", str(count), expression],
            capture_output=True,
            text=True,
            env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
            check=True,
        )
        for line in done.stdout.splitlines():
            key, _, value = line.strip().partition(": ")
            if key in ("Next elapse", "(in UTC)") or key.startswith("Iter."):
                times.add(
                    datetime.strptime(value.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S %Z").replace(
                        tzinfo=UTC
                    )
                )
    return sorted(times)[:count]


# --- runs, metrics, notifications ---------------------------------------------------------


def test_task_document_gives_each_hosts_status() -> None:
    document = {
        "task": "backup.db",
        "results": [
            {"host": "a", "status": "ok", "duration_s": 1.0, "details": {}, "error": None},
            {
                "host": "b",
                "status": "unreachable",
                "duration_s": 3.0,
                "details": {},
                "error": "refused",
            },
        ],
    }
    outcome = outcome_from(1, json.dumps(document), "", datetime.now(UTC))
    assert outcome.status == "failed" and outcome.error == "b: refused"
    assert [host["status"] for host in outcome.hosts] == ["ok", "unreachable"]


def test_crashed_task_fails_with_the_end_of_its_stderr_masked() -> None:
    stderr = "Traceback ...\nOperationalError: postgresql://maint:hunter2secret@db/x refused\n"
    outcome = outcome_from(1, "", stderr, datetime.now(UTC))
    assert outcome.status == "failed" and "OperationalError" in outcome.error
    assert "hunter2secret" not in outcome.error


def test_sizes_and_days_left_are_found_anywhere_in_details() -> None:
    details = {
        "databases": [{"name": "app", "size": 1234}, {"name": "crm", "size": 99}],
        "certificates": [{"endpoint": "db:5432", "days_left": 12}],
        "size": 5,
    }
    assert sorted(detail_figures(details)) == [
        ("days_left", "db:5432", 12.0),
        ("size", "", 5.0),
        ("size", "app", 1234.0),
        ("size", "crm", 99.0),
    ]


def test_textfile_keeps_the_last_success_after_a_failure(tmp_path: Path) -> None:
    ok = [{"host": "db1", "status": "ok", "duration_s": 2, "details": {"size": 10}}]
    failed = [{"host": "db1", "status": "failed", "duration_s": 1, "details": {}}]
    write_textfile(tmp_path, "backup.db", ok, 1000.0)
    path = write_textfile(tmp_path, "backup.db", failed, 2000.0)
    text = path.read_text()
    assert path.name == "maint_backup_db.prom"
    assert 'maint_task_last_success_timestamp_seconds{host="db1",task="backup.db"} 1000.0' in text
    assert 'maint_task_last_run_timestamp_seconds{host="db1",task="backup.db"} 2000.0' in text
    assert 'maint_task_last_status{host="db1",state="failed",task="backup.db"} 1.0' in text
    assert 'maint_task_last_status{host="db1",state="ok",task="backup.db"} 0.0' in text


def test_textfile_status_label_is_state_even_after_an_old_file(tmp_path: Path) -> None:
    """The documented label is `state`; a file written when it was named after the metric is
    read back (its other hosts keep their status) and rewritten with `state`."""
    old = (
        "# TYPE maint_task_last_status gauge\n"
        'maint_task_last_status{host="db2",maint_task_last_status="failed",task="backup.db"} 1.0\n'
    )
    (tmp_path / "maint_backup_db.prom").write_text(old)
    ok = [{"host": "db1", "status": "ok", "duration_s": 1, "details": {}}]
    text = write_textfile(tmp_path, "backup.db", ok, 1000.0).read_text()
    assert 'maint_task_last_status{host="db1",state="ok",task="backup.db"} 1.0' in text
    assert 'maint_task_last_status{host="db2",state="failed",task="backup.db"} 1.0' in text
    assert "maint_task_last_status=" not in text


def test_health_check_exports_each_checks_state_and_value_in_its_textfile(tmp_path: Path) -> None:
    """A real health.check run writes maint_check_state / maint_check_value per host and check:
    a disk at or under its crit threshold is CRITICAL (2), valued at the free percentage the
    check measured; the message text stays out of the labels."""
    prom = tmp_path / "prom"
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "full": {
                "ansible_connection": "local",
                "health": {"disk_warn_free_pct": 100, "disk_crit_free_pct": 100},
                "metrics": {"textfile_dir": str(prom)},
            }
        },
    )
    run = subprocess.run(
        ["maint", "health.check", "-i", str(inventory), "--json"], capture_output=True, text=True
    )
    assert run.returncode == 2, run.stderr
    host = json.loads(run.stdout)["results"][0]
    (disk,) = [c for c in host["details"]["checks"] if c["name"] == "disk /"]
    assert disk["state"] == "CRITICAL" and isinstance(disk["value"], float)
    text = (prom / "maint_health_check.prom").read_text()
    labels = 'check="disk /",host="full",task="health.check"'
    assert f"maint_check_state{{{labels}}} 2.0" in text
    assert f"maint_check_value{{{labels}}} {disk['value']}" in text
    assert "free (" not in text  # no message text


def test_check_series_follow_the_checks_and_survive_for_other_hosts(tmp_path: Path) -> None:
    """certs.check's targets are checks too (valued at their fewest days left); a check that
    measured nothing has a state but no value; other hosts' checks stay in the textfile."""
    certs = {
        "targets": [
            {"target": "db:5432", "state": "WARNING",
             "certificates": [{"days_left": 12.5}, {"days_left": 300.0}]},
            {"target": "/etc/ssl/x.pem", "state": "UNKNOWN", "certificates": []},
        ]
    }  # fmt: skip
    first = [
        {"host": "db1", "status": "ok", "details": certs},
        {"host": "db2", "status": "ok", "details": certs},
    ]
    write_textfile(tmp_path, "certs.check", first, 1000.0)
    again = [{"host": "db1", "status": "ok", "details": {"targets": []}}]
    text = write_textfile(tmp_path, "certs.check", again, 2000.0).read_text()
    assert 'maint_check_state{check="db:5432",host="db2",task="certs.check"} 1.0' in text
    assert 'maint_check_value{check="db:5432",host="db2",task="certs.check"} 12.5' in text
    assert 'maint_check_state{check="/etc/ssl/x.pem",host="db2",task="certs.check"} 3.0' in text
    assert 'maint_check_value{check="/etc/ssl/x.pem"' not in text
    checks = [line for line in text.splitlines() if line.startswith("maint_check_")]
    assert len(checks) == 3 and all('host="db2"' in line for line in checks), checks


def test_daemon_drops_the_series_of_a_check_gone_or_no_longer_measured() -> None:
    metrics = SchedulerMetrics()
    checks = [
        {"name": "disk /", "state": "OK", "value": 40.0},
        {"name": "disk /var", "state": "OK", "value": 55.5},
    ]
    metrics.observe(
        "health.check", [{"host": "h", "status": "ok", "details": {"checks": checks}}], 1.0
    )
    later = [{"name": "disk /", "state": "UNKNOWN", "message": "cannot read", "value": None}]
    metrics.observe(
        "health.check", [{"host": "h", "status": "failed", "details": {"checks": later}}], 2.0
    )
    text = generate_latest(metrics.registry).decode()
    assert 'maint_check_state{check="disk /",host="h",task="health.check"} 3.0' in text
    assert "maint_check_value{" not in text and 'check="disk /var"' not in text


def test_webhook_url_is_shown_without_its_secret_path() -> None:
    assert (
        masked_url("https://hooks.slack.com/services/T0/B0/XYZsecret")
        == "https://hooks.slack.com/…"
    )


# --- the commands -------------------------------------------------------------------------


def test_invalid_schedule_stops_the_daemon_before_it_starts(tmp_path: Path) -> None:
    """`maint schedule.run` on a bad schedule exits 2 naming the job, without a traceback."""
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {"ansible_connection": "local"}},
        all_vars={"schedule": [{"task": "health.check", "every": "week", "day": 31}]},
    )
    done = subprocess.run(
        ["maint", "schedule.run", "-i", str(inventory)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "group 'all' (host h): schedule[0]: 'day': a day of the month" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["config.check", "schedule.list", "schedule.run"])
def test_misplaced_keys_and_bad_args_stop_every_command(tmp_path: Path, command: str) -> None:
    """Neither a host's schedule nor a job's bad args pass a check only to fail (or do
    nothing) later: the daemon does not start, config.check and schedule.list exit 2."""
    misplaced = _misplaced_inventory(tmp_path / "misplaced.yaml")
    bad_args = write_inventory(
        tmp_path / "args.yaml",
        {"h": {"ansible_connection": "local"}},
        all_vars={
            "state_dir": str(tmp_path / "state"),
            "schedule": [
                {"task": "db.purge", "every": "day",
                 "args": {"older_than": "12m", "table": "t", "column": "c"}},
                {"task": "db.vacuum", "every": "day", "args": {"lock_timeout": "99zz"}},
            ],
        },
    )  # fmt: skip
    for inventory, expected in (
        (misplaced, [f"{misplaced}: {line}" for line in MISPLACED]),
        (
            bad_args,
            [
                f"{bad_args}: group 'all': schedule[0].args.older_than: ambiguous: "
                "write 12min or 12mo",
                f"{bad_args}: group 'all': schedule[1].args.lock_timeout: unknown unit 'zz'",
            ],
        ),
    ):
        done = subprocess.run(
            ["maint", command, "-i", str(inventory)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        for line in expected:
            assert line in done.stderr
        assert "Traceback" not in done.stderr and "scheduler started" not in done.stderr


def test_list_shows_next_runs_in_the_jobs_time_zone(tmp_path: Path) -> None:
    schedule = [{"task": "health.check", "every": "week", "on": "sunday", "at": "03:00"}]
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {"ansible_connection": "local"}},
        all_vars={"schedule": [schedule[0] | {"timezone": "Europe/Berlin"}]},
    )
    done = subprocess.run(
        ["maint", "schedule.list", "-i", str(inventory), "--count", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "every sunday at 03:00 Europe/Berlin" in done.stdout
    assert done.stdout.count(" 03:00:00 CE") == 2  # CET or CEST, Sundays at 03:00


def test_export_writes_verified_systemd_units(tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {"ansible_connection": "local"}},
        all_vars={"schedule": EXPORTED},
    )
    done = subprocess.run(
        [
            "maint",
            "schedule.export",
            "-i",
            str(inventory),
            "--format",
            "systemd",
            "--output",
            str(tmp_path / "units"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    names = sorted(path.name for path in (tmp_path / "units").iterdir())
    assert len(names) == 2 * len(EXPORTED) and "maint-day31.timer" in names
