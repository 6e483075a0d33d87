"""The settings model's own rules: the duration grammar, did-you-mean, where a problem was set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.settings.durations import parse_age, parse_duration
from maintenance.settings.problems import closest


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
