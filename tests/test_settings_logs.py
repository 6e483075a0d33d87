"""Broken `logs`, scheduler and connection settings through the real `maint`, and good ones.

Each broken inventory goes through every task that reads the section and must be refused
before any host is touched: exit 2 (3 for the checks), the host or group and the key path,
no traceback, nothing written, no old log deleted, no webhook token repeated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maintenance.executor import run_procedure
from maintenance.inventory import load_inventory
from maintenance.results import Result, Status
from tests.inventories import write_inventory
from tests.settings_cases import Case, assert_refused

# Rules of the broken cases point here; an old log in it must survive every refusal.
LOGS = Path("/var/tmp/maint-settings-logs")
OLD_LOG = LOGS / "old.log"
TOKEN = "T0KEN-s3cr3t-4f9a"
SCHEDULE = ("schedule.list", "schedule.status", "schedule.export")
CONNECTING = ("logs.clean", "health.check", "backup.db")
ROTATING = ("logs.rotate", "logs.clean")


def rule(**keys: object) -> dict[str, object]:
    return {"path": f"{LOGS}/*.log", **keys}


def rotation(**keys: object) -> dict[str, object]:
    return rule(**{"rotate": "daily", "keep": 30, **keys})


def job(**keys: object) -> dict[str, object]:
    return {"task": "db.vacuum", "every": "week", "on": "sunday", "at": "03:00", **keys}


CASES = [
    # logs: read by logs.clean
    Case("logs-typo", {"logs": [rule(delet_after="14d")]},
         "logs[0].delet_after: unknown key 'delet_after'; did you mean 'delete_after'?",
         ("logs.clean",)),
    Case("logs-bare-number", {"logs": [rule(delete_after=14)]},
         "logs[0].delete_after: ambiguous: write 14min or 14mo", ("logs.clean",)),
    Case("logs-bare-m", {"logs": [rule(compress_after="1d"), rule(delete_after="12m")]},
         "logs[1].delete_after: ambiguous: write 12min or 12mo", ("logs.clean",)),
    Case("logs-compress-bare", {"logs": [rule(compress_after="90")]},
         "logs[0].compress_after: ambiguous: write 90min or 90mo", ("logs.clean",), on_group=True),
    Case("logs-root", {"logs": [{"path": "/", "delete_after": "1d"}]},
         "logs[0].path: path '/' names a directory", ("logs.clean",)),
    Case("logs-no-base", {"logs": [{"path": "/*/*.log", "delete_after": "1d"}]},
         "logs[0].path: path '/*/*.log' has no fixed directory part", ("logs.clean",)),
    Case("logs-string-not-list", {"logs": f"{LOGS}/*.log"},
         "logs: expected a list, got the string", ("logs.clean",)),
    Case("logs-does-nothing", {"logs": [rule(min_age="1h")]},
         "logs[0]: rule for '/var/tmp/maint-settings-logs/*.log' does nothing", ("logs.clean",),
         on_group=True),
    Case("logs-bool-size", {"logs": [rule(max_total_size=True)]},
         "logs[0].max_total_size: expected a size", ("logs.clean",)),
    Case("logs-codec", {"logs": [rule(compress_after="1d", codec="bzip2")]},
         "logs[0].codec: expected one of 'gzip' or 'zstd'", ("logs.clean",)),
    # rotation keys: read by logs.rotate, and by logs.clean (the same rules)
    Case("rotate-typo", {"logs": [rotation(rotat="daily")]},
         "logs[0].rotat: unknown key 'rotat'; did you mean 'rotate'?", ROTATING),
    Case("rotate-cadence", {"logs": [rotation(rotate="hourly")]},
         "logs[0].rotate: expected one of 'daily', 'weekly' or 'monthly'", ROTATING),
    Case("rotate-keep-absurd", {"logs": [rotation(keep=1_000_000)]},
         "logs[0].keep: expected at most 10000", ROTATING, on_group=True),
    Case("rotate-keep-bool", {"logs": [rotation(keep=True)]},
         "logs[0].keep: expected a number, got true", ROTATING),
    Case("rotate-size-unit", {"logs": [rule(size="100 parsecs", keep=3)]},
         "logs[0].size: ", ROTATING),
    Case("rotate-size-zero", {"logs": [rule(size=0, keep=3)]},
         "logs[0].size: expected more than 0", ROTATING),
    Case("rotate-create-mode", {"logs": [rotation(create="0999 app app")]},
         "logs[0].create: mode '0999' is not an octal file mode", ROTATING),
    Case("rotate-create-owner", {"logs": [rotation(create="0644 app;rm app")]},
         "logs[0].create: 'app;rm' is neither a user or group name", ROTATING),
    Case("rotate-create-and-copytruncate",
         {"logs": [rotation(create="0644 app app", copytruncate=True)]},
         "copytruncate and create are two ways to hand the live file back", ROTATING),
    Case("rotate-compress-bool", {"logs": [rotation(compress=True)]},
         "logs[0].compress: expected one of 'gz' or 'zstd'", ROTATING),
    Case("rotate-compress-after", {"logs": [rotation(compress_after="1d")]},
         "a rotating rule compresses what it rotates: use compress", ROTATING),
    Case("rotate-without-keep", {"logs": [rule(rotate="daily")]},
         "say how many rotated files to keep", ROTATING),
    Case("rotate-key-without-rotate", {"logs": [rule(delete_after="14d", postrotate="x")]},
         "postrotate only applies to a rule that rotates", ROTATING),
    Case("rotate-size-and-cadence", {"logs": [rotation(size="100MiB")]},
         "size rotates by size alone whatever the cadence", ROTATING),
    Case("rotate-maxsize-unit", {"logs": [rotation(maxsize="10 parsecs")]},
         "logs[0].maxsize: expected a size like 500MB, 2GB or 1GiB, got '10 parsecs'", ROTATING),
    Case("rotate-minsize-without-cadence", {"logs": [rule(size="1MiB", keep=3, minsize="1MiB")]},
         "maxsize and minsize refine a cadence: set rotate too", ROTATING),
    Case("rotate-minsize-above-maxsize",
         {"logs": [rotation(minsize="2MiB", maxsize="1MiB")]},
         "minsize is bigger than maxsize", ROTATING),
    Case("rotate-delay-compress-word", {"logs": [rotation(delay_compress="sometimes")]},
         "logs[0].delay_compress: expected true or false, got the string 'sometimes'", ROTATING),
    Case("logrotate-with-keys", {"logs": [{"logrotate": "/etc/logrotate.d/app", "keep": 3}]},
         "a logrotate entry imports its rules from /etc/logrotate.d/app and takes no other key",
         ROTATING),
    Case("logrotate-relative", {"logs": [{"logrotate": "logrotate.d/app"}]},
         "logs[0].logrotate: expected the absolute path of a logrotate file", ROTATING),
    # schedule, scheduler, notify, metrics, state_*: in all.vars, read by the schedule tasks
    Case("schedule-typo", {}, "schedule[0].evry: unknown key 'evry'; did you mean 'every'?",
         (*SCHEDULE, "schedule.run"), all_vars={"schedule": [{"task": "db.bloat", "evry": "1w"}]}),
    Case("schedule-string-not-list", {}, "schedule: expected a list, got the string 'db.vacuum'",
         SCHEDULE, all_vars={"schedule": "db.vacuum"}),
    Case("schedule-bool-jitter", {}, "schedule[1].jitter: expected a duration", SCHEDULE,
         all_vars={"schedule": [job(), job(name="other", jitter=True)]}),
    Case("schedule-day-on-week", {}, "schedule[0]: 'day': a day of the month is only", SCHEDULE,
         all_vars={"schedule": [job(day=31)]}),
    Case("schedule-unknown-task", {}, "schedule[0].task: unknown task 'db.vacum'", SCHEDULE,
         all_vars={"schedule": [job(task="db.vacum")]}),
    Case("notify-typo", {}, "notify.webhok: unknown key 'webhok' (known keys: heartbeat_url",
         (*SCHEDULE, "schedule.run"),
         all_vars={"notify": {"webhok": f"https://hooks.example.com/services/{TOKEN}"}}),
    Case("schedule-heartbeat-typo", {},
         "schedule[0].heartbeat_ulr: unknown key 'heartbeat_ulr'; did you mean 'heartbeat_url'?",
         (*SCHEDULE, "schedule.run"),
         all_vars={"schedule": [job(heartbeat_ulr=f"https://hc-ping.com/{TOKEN}")]}),
    Case("schedule-heartbeat-not-a-url", {}, "schedule[0].heartbeat_url: expected an http(s) URL",
         SCHEDULE, all_vars={"schedule": [job(heartbeat_url=f"hc-ping.com/{TOKEN}")]}),
    Case("notify-not-a-url", {}, "notify.webhook_url: expected an http(s) URL", SCHEDULE,
         all_vars={"notify": {"webhook_url": f"hooks.example.com/{TOKEN}"}}),
    Case("notify-zero-timeout", {}, "notify.timeout: expected more than 0", SCHEDULE,
         all_vars={"notify": {"timeout": 0}}),
    Case("scheduler-typo", {}, "scheduler.catchup: unknown key 'catchup'; did you mean 'catch_up'?",
         SCHEDULE, all_vars={"scheduler": {"catchup": "1h"}}),
    Case("scheduler-zone", {}, "scheduler.timezone: unknown time zone 'Mars/Olympus'", SCHEDULE,
         all_vars={"scheduler": {"timezone": "Mars/Olympus"}}),
    # metrics.textfile_dir is read by every task after its run
    Case("metrics-typo", {}, "metrics.textfile_dri: unknown key 'textfile_dri'; did you mean "
         "'textfile_dir'?", (*SCHEDULE, "logs.clean", "health.check"),
         all_vars={"metrics": {"textfile_dri": "/var/lib/node-exporter"}}),
    Case("metrics-listen", {}, "metrics.listen: expected ADDRESS:PORT, got 'everywhere'",
         SCHEDULE, all_vars={"metrics": {"listen": "everywhere"}}),
    Case("state-dir-list", {}, "state_dir: expected text, got a list", SCHEDULE,
         all_vars={"state_dir": ["/var/lib/maint"]}),
    # connection keys: read by every task that reaches a host
    Case("host-timeout-unit", {"host_timeout": "10x"}, "host_timeout: unknown unit 'x'",
         CONNECTING),
    Case("host-timeout-negative", {"host_timeout": "-10min"}, "host_timeout: expected a duration",
         CONNECTING[:2], on_group=True),
    Case("connect-timeout-negative", {"connect_timeout": -5},
         "connect_timeout: a duration cannot be negative", CONNECTING[:2]),
    Case("connect-timeout-zero", {"connect_timeout": 0}, "connect_timeout: expected more than 0",
         CONNECTING[:2]),
    Case("command-timeout-bool", {"command_timeout": True},
         "command_timeout: expected a number of seconds or a duration", CONNECTING[:2]),
    Case("known-hosts-number", {"ssh_known_hosts": 5}, "ssh_known_hosts: expected a list",
         CONNECTING[:2]),
    Case("host-key-checking", {"ansible_host_key_checking": "maybe"},
         "ansible_host_key_checking: expected true or false", CONNECTING[:2]),
]  # fmt: skip


@pytest.fixture(scope="module")
def old_log() -> Iterator[Path]:
    """A 400-day-old log every broken rule would have matched."""
    LOGS.mkdir(parents=True, exist_ok=True)
    OLD_LOG.write_text("an old log\n")
    stamp = time.time() - 400 * 86400
    os.utime(OLD_LOG, (stamp, stamp))
    yield OLD_LOG
    shutil.rmtree(LOGS, ignore_errors=True)


@pytest.mark.parametrize(
    ("case", "task"),
    [pytest.param(case, task, id=f"{case.id}-{task}") for case in CASES for task in case.tasks],
)
def test_broken_settings_are_refused_before_any_host_is_touched(
    tmp_path: Path, old_log: Path, case: Case, task: str
) -> None:
    done = assert_refused(tmp_path, case, task)
    assert old_log.exists(), "a refused rule deleted a log"
    assert TOKEN not in done.stdout + done.stderr, "the webhook's token was repeated"


def local_inventory(tmp_path: Path, **host_vars: object) -> Path:
    return write_inventory(
        tmp_path / "inventory.yaml", {"db1": {"ansible_connection": "local", **host_vars}}
    )


def test_a_14d_deletion_age_is_accepted_and_the_dry_run_says_its_cutoff(
    tmp_path: Path, old_log: Path
) -> None:
    """delete_after: 14d; the dry run names the cutoff in words and as a UTC time."""
    inventory = local_inventory(tmp_path, logs=[rule(delete_after="14d")])
    before = datetime.now(UTC) - timedelta(days=14)
    run = ["maint", "logs.clean", "-i", str(inventory), "--dry-run"]
    done = subprocess.run([*run, "--json"], capture_output=True, text=True, timeout=60)
    plain = subprocess.run(run, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0 and plain.returncode == 0, done.stderr + plain.stderr
    details = json.loads(done.stdout)["results"][0]["details"]
    cutoff = details["rules"][0]["cutoffs"]["delete"]
    assert cutoff["age"] == "14 days"
    said = datetime.fromisoformat(cutoff["before"].replace("Z", "+00:00"))
    assert abs(said - before) < timedelta(minutes=1)
    assert cutoff["text"] == f"older than 14 days, before {said:%Y-%m-%d %H:%M} UTC"
    assert [row["action"] for row in details["rows"]] == ["delete"]
    assert "older than 14 days, before " in plain.stdout and " UTC" in plain.stdout
    assert old_log.exists(), "a dry run deleted a file"


def test_host_timeout_in_minutes_is_accepted_and_bounds_the_host(tmp_path: Path) -> None:
    """host_timeout: 10m is ten minutes now (a traceback before); 1s fails a slower host."""
    inventory = load_inventory(local_inventory(tmp_path, host_timeout="10m"))
    assert inventory.hosts["db1"].settings.host_timeout == 600

    host = load_inventory(local_inventory(tmp_path, host_timeout="1s")).hosts["db1"]

    def slow(host, runner, options) -> Result:
        runner.run("sleep 3")
        return Result(host.name, Status.OK)

    [result] = run_procedure("test.slow", slow, [host], None)
    assert result.status == Status.FAILED and "timed out after 1s" in (result.error or "")
    # The command is stopped at the timeout, not left to run to its end (3 s).
    assert result.duration_s < 2.5, result.duration_s
