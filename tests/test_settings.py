"""The settings model's own rules: the duration grammar, did-you-mean, where a problem was set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.settings.durations import duration_words, parse_age, parse_duration
from maintenance.settings.problems import closest
from tests.maint_cli import run_maint_cli
from tests.settings_cases import Case, assert_refused


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15min", 900), ("15m", 900), ("6h", 21600), ("14d", 14 * 86400),
     ("2w", 14 * 86400), ("1h30min", 5400), ("90", 90), (90, 90), ("1.5h", 5400),
     ("1mo", 30 * 86400), ("1y", 365 * 86400), ("2 days 3 hours", 2 * 86400 + 3 * 3600)],
)  # fmt: skip
def test_lenient_durations_keep_m_as_minutes_and_numbers_as_seconds(text, seconds) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["12m", "90", 14, "1h30m"])
def test_ages_that_delete_refuse_bare_numbers_and_bare_m(text) -> None:
    with pytest.raises(ValueError, match="ambiguous: write"):
        parse_age(text, deletes=True)


@pytest.mark.parametrize("text", ["12x", "", "-5d", "1.5mo", True, [3]])
def test_nonsense_durations_are_refused(text) -> None:
    with pytest.raises(ValueError, match=r"expected a duration|unknown unit|whole numbers"):
        parse_age(text, deletes=False)


def test_months_and_years_count_on_the_calendar() -> None:
    now = datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert parse_age("12mo", deletes=True).before(now) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    assert parse_age("1y", deletes=True).before(now) == datetime(2025, 3, 31, 12, tzinfo=UTC)
    # 31 March minus one month rolls over as restic (Go) does: 31 Feb is 3 March.
    assert parse_age("1mo", deletes=True).before(now) == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert parse_age("1y6mo2d", deletes=True).words() == "1 year 6 months 2 days"


@pytest.mark.parametrize(
    ("typo", "meant"), [("stor", "store"), ("sotre", "store"), ("webhok", "webhook"), ("x", None)]
)
def test_did_you_mean_within_two_edits(typo: str, meant: str | None) -> None:
    assert closest(typo, ["store", "codec", "webhook", "retention"]) == meant


def _load(tmp_path: Path, text: str) -> str:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_inventory(path)
    return str(caught.value)


def test_a_problem_set_on_a_group_is_said_once_naming_the_group_and_its_hosts(
    tmp_path: Path,
) -> None:
    text = _load(
        tmp_path,
        "all:\n  children:\n    databases:\n      vars: {host_timeout: 10x}\n"
        "      hosts: {db1: {}, db2: {}, db3: {}}\n",
    )
    lines = [line for line in text.splitlines() if "host_timeout" in line]
    assert len(lines) == 1, text
    assert "group 'databases' (hosts db1, db2, db3): host_timeout: unknown unit 'x'" in lines[0]
    assert str(tmp_path / "inventory.yaml") in lines[0]


def test_near_misses_of_product_keys_are_refused_and_ansible_vars_left_alone(
    tmp_path: Path,
) -> None:
    text = _load(
        tmp_path,
        "all:\n  vars: {bakup: {}, tags: [x], jobs_dir: /x, log: y}\n  hosts: {db1: {helth: {}}}\n",
    )
    assert "group 'all' (host db1): bakup: unknown key; did you mean 'backup'?" in text
    assert "host 'db1': helth: unknown key; did you mean 'health'?" in text
    assert "log: unknown key; did you mean 'logs'?" in text
    assert "tags" not in text and "jobs_dir" not in text


def test_every_problem_of_every_host_is_reported_together(tmp_path: Path) -> None:
    text = _load(
        tmp_path,
        "all:\n  hosts:\n    db1: {connect_timeout: -1}\n    db2: {command_timeout: yes}\n",
    )
    assert "host 'db1': connect_timeout: a duration cannot be negative" in text
    assert "host 'db2': command_timeout:" in text


@pytest.mark.parametrize(
    "text", ["99999999999y", "3000y", "1001y", "365001d", "1000y1s", "9" * 400 + "s",
             "9" * 5000 + "y", 99_999_999_999, "99999999999"],
    ids=lambda text: str(text)[:14],
)  # fmt: skip
def test_absurd_lengths_are_refused_at_parse_time_not_overflowed(text) -> None:
    with pytest.raises(ValueError, match="too long: at most 1000 years"):
        parse_duration(text)
    if isinstance(text, str) and not text.isdigit():
        with pytest.raises(ValueError, match="too long: at most 1000 years"):
            parse_age(text, deletes=True)


def test_a_thousand_years_is_still_a_length() -> None:
    assert parse_duration("1000y") == timedelta(days=365_000)
    now = datetime(2026, 3, 31, tzinfo=UTC)
    assert parse_age("1000y", deletes=True).before(now) == datetime(1026, 3, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("length", "words"),
    [(timedelta(hours=2), "2 hours"), (timedelta(days=1, hours=6), "1 day 6 hours"),
     (0.5, "0.5 seconds"), (0, "0 seconds"), (timedelta(minutes=1), "1 minute")],
)  # fmt: skip
def test_durations_are_said_in_the_grammar_s_words(length, words) -> None:
    assert duration_words(length) == words


@pytest.mark.parametrize(
    "case",
    [
        Case("host-timeout-absurd", {"host_timeout": "99999999999y"},
             "host_timeout: too long: at most 1000 years", ("config.check", "backup.list")),
        # A timer, a poll() or a socket would overflow past 2147483647 ms.
        Case("command-timeout-past-int4-ms", {"command_timeout": "1000y"},
             "command_timeout: too long for a timeout: at most 24 days", ("config.check",
             "backup.list"), on_group=True),
        Case("state-dsn-bad", {"state_dsn": "host=127.0.0.1 user=u password=hunter2 topsecret"},
             "state_dsn: not a valid libpq connection string or URI", ("config.check",
             "backup.list")),
        Case("state-dsn-port", {"state_dsn": "postgresql://u:hunter2@h:notaport/maint"},
             "state_dsn: the port must be a number from 1 to 65535", ("config.check",)),
    ],
    ids=lambda case: case.id,
)  # fmt: skip
def test_host_level_values_are_refused_at_load_without_echoing_secrets(
    tmp_path: Path, case: Case
) -> None:
    for task in case.tasks:
        where = tmp_path / task
        where.mkdir()
        done = assert_refused(where, case, task)
        assert "hunter2" not in done.stderr + done.stdout


def _flag_inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    host = {"ansible_connection": "local", "backup": {"store": str(tmp_path / "store")},
            "postgres": {"dsn": "postgresql://maint@127.0.0.1:1/app"}}  # fmt: skip
    path.write_text(yaml.safe_dump({"all": {"hosts": {"db1": host}}}))
    return path


@pytest.mark.parametrize(
    ("argv", "says", "code"),
    [(["health.check", "--long-query-seconds", "99999999999y"],
      "--long-query-seconds: too long: at most 1000 years", 3),
     (["db.long-queries", "--older-than", "99999999999y"], "--older-than: too long", 2),
     (["db.idle-connections", "--older-than", "99999999999y"], "--older-than: too long", 2),
     (["db.vacuum", "--lock-timeout", "99999999999y", "--dry-run"], "--lock-timeout: too long", 2),
     (["db.vacuum", "--statement-timeout", "30d", "--dry-run"],
      "--statement-timeout: too long for PostgreSQL: at most 24 days", 2),
     (["db.purge", "--table", "events", "--column", "created_at", "--older-than", "3000y",
       "--dry-run"], "--older-than: too long: at most 1000 years", 2)],
)  # fmt: skip
def test_absurd_flag_lengths_are_refused_before_anything_runs(
    tmp_path: Path, argv: list[str], says: str, code: int
) -> None:
    done = run_maint_cli([*argv, "-i", str(_flag_inventory(tmp_path))])
    assert done.returncode == code, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    assert says in done.stderr, done.stderr
