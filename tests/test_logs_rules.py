"""logs rules and plans without a host: glob safety, matching, age decisions, the size cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintenance.errors import ConfigError
from maintenance.inventory import Host
from maintenance.logs.plan import (
    Action,
    LogFile,
    apply_size_cap,
    cutoffs,
    display_path,
    plan_by_age,
    rule_files,
)
from maintenance.logs.rules import matches, owns
from maintenance.settings.logs import LogRule, split_glob

DAY = 86400.0
NOW = 1_800_000_000.0


def rule(path: str = "/srv/app/logs/*.log", **settings) -> LogRule:
    return LogRule.model_validate({"path": path, **settings})


def log(name: str, age_days: float, size: int = 100, kind: str = "f", links: int = 1) -> LogFile:
    return LogFile(f"/srv/app/logs/{name}".encode(), kind, size, NOW - age_days * DAY, links)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("*.log", "must be absolute"),
        ("logs/*.log", "must be absolute"),
        ("/*.log", "no fixed directory part"),
        ("/*/log/*.log", "no fixed directory part"),
        ("/var/*.log", "system directory /var"),
        ("/etc/*", "system directory /etc"),
        ("/tmp/x.log", "system directory /tmp"),
        ("/", "names a directory"),
        ("/var/log/app/", "names a directory"),
        ("/var/log/../../etc/*.conf", "'..'"),
    ],
)
def test_dangerous_globs_are_refused(path: str, message: str) -> None:
    """Globs without a safe base directory never become rules."""
    with pytest.raises(ValueError, match=message):
        split_glob(path)


def test_base_is_the_fixed_directory_part() -> None:
    assert split_glob("/var/log/postgresql/*.log") == ("/var/log/postgresql", ("*.log",))
    assert split_glob("/srv/app-*/logs/**/*.log") == ("/srv", ("app-*", "logs", "**", "*.log"))
    assert split_glob("/var/log/app.log") == ("/var/log", ("app.log",))


@pytest.mark.parametrize(
    ("pattern", "relative", "expected"),
    [
        ("*.log", b"app.log", True),
        ("*.log", b"sub/app.log", False),
        ("*.log", b".hidden.log", False),
        (".*.log", b".hidden.log", True),
        ("**/*.log", b"app.log", True),
        ("**/*.log", b"a/b/c/app.log", True),
        ("**/*.log", b".git/app.log", False),
        ("app-?.log", b"app-1.log", True),
        ("app-?.log", b"app-10.log", False),
        ("app.[0-9]", b"app.7", True),
        ("app.[!0-9]", b"app.7", False),
        ("app.[!0-9]", b"app.x", True),
        ("*.log", "café new\nline.log".encode(), True),
        ("*.log", b"caf\xe9.log", True),
        ("*.log", b"app.log.gz", False),
    ],
)
def test_glob_matching_follows_the_shell(pattern: str, relative: bytes, expected: bool) -> None:
    assert matches(rule(f"/srv/logs/{pattern}", delete_after="1d"), relative) is expected


def test_compressed_copies_of_matches_belong_to_the_rule() -> None:
    """app.log matches *.log, so app.log.gz (its compressed copy) is the rule's too."""
    logs = rule(delete_after="1d")
    assert owns(logs, b"app.log.gz") and owns(logs, b"app.log.zst")
    assert not owns(logs, b"other.txt.gz")


def test_glob_expanding_to_directories_is_refused() -> None:
    entries = [log("app.log", 1), LogFile(b"/srv/app/logs/old.log", "d", 4096, NOW)]
    with pytest.raises(ConfigError, match="expands to directories"):
        rule_files(rule(delete_after="1d"), entries)


def test_age_decides_delete_then_compress_then_keep() -> None:
    logs = rule(compress_after="1d", delete_after="14d")
    files = [log("new.log", 0.5), log("mid.log", 3), log("old.log", 20), log("mid.log.gz", 5)]
    actions = {d.file.path.rsplit(b"/", 1)[1]: d.action for d in plan_by_age(logs, files, NOW)}
    assert actions == {
        b"new.log": Action.KEEP,
        b"mid.log": Action.SKIP,  # mid.log.gz exists: never overwritten
        b"old.log": Action.DELETE,
        b"mid.log.gz": Action.KEEP,  # already compressed
    }


def test_links_and_fresh_files_are_never_acted_on() -> None:
    logs = rule(delete_after="1s", min_age="10min")
    files = [
        log("link.log", 30, kind="l"),
        log("hard.log", 30, links=2),
        log("fresh.log", 60 / DAY),
        log("fifo.log", 30, kind="p"),
    ]
    assert all(not d.acts for d in plan_by_age(logs, files, NOW))


def test_size_cap_deletes_oldest_first_and_spares_fresh_files() -> None:
    logs = rule(max_total_size=350, min_age="1h")
    files = [log(f"{age}.log", age) for age in (1, 2, 3, 4, 5)] + [log("now.log", 0)]
    decisions = apply_size_cap(logs, plan_by_age(logs, files, NOW))
    deleted = sorted(d.file.path for d in decisions if d.action == Action.DELETE)
    assert deleted == [b"/srv/app/logs/3.log", b"/srv/app/logs/4.log", b"/srv/app/logs/5.log"]


@given(
    ages=st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=30),
    cap=st.integers(min_value=0, max_value=3000),
)
def test_size_cap_never_touches_fresh_files_and_meets_the_cap_when_it_can(
    ages: list[float], cap: int
) -> None:
    logs = rule(max_total_size=cap, min_age="1d")
    files = [log(f"{index}.log", age) for index, age in enumerate(ages)]
    decisions = apply_size_cap(logs, plan_by_age(logs, files, NOW))
    fresh = {f.path for f in files if NOW - f.mtime < DAY}
    kept = [d for d in decisions if d.action != Action.DELETE]
    assert not any(d.action == Action.DELETE and d.file.path in fresh for d in decisions)
    assert sum(d.file.size for d in kept) <= cap or all(d.file.path in fresh for d in kept)
    survivors = [d.file.mtime for d in kept if d.file.path not in fresh]
    deleted = [d.file.mtime for d in decisions if d.action == Action.DELETE]
    assert not survivors or not deleted or min(survivors) >= max(deleted)


def test_rules_from_vars_report_every_problem() -> None:
    host = Host(
        "web1",
        (),
        {
            "logs": [
                {"path": "/srv/app/*.log", "delete_after": "14d", "min_age": "10m"},
                {"path": "*.log", "delete_after": "1d"},
                {"path": "/srv/app/*.log", "delete_after": "soon"},
                {"path": "/srv/app/*.log"},
                {"path": "/srv/app/*.log", "compress_after": "1d", "codec": "bzip2"},
                {"path": "/srv/app/*.log", "delete_after": "1d", "keep": 3},
                {"path": "/srv/app/*.log", "delete_after": "14"},
            ]
        },
    )
    with pytest.raises(ConfigError) as caught:
        host.settings  # noqa: B018 - parsing is the point
    message = str(caught.value)
    for path, text in [
        ("logs[1].path", "must be absolute"),
        ("logs[2].delete_after", "expected a duration"),
        ("logs[3]", "does nothing"),
        ("logs[4].codec", "expected one of 'gzip' or 'zstd'"),
        ("logs[5]", "keep only applies to a rule that rotates: set rotate"),
        ("logs[6].delete_after", "ambiguous: write 14min or 14mo"),
    ]:
        lines = [line for line in message.splitlines() if f"host 'web1': {path}: " in line]
        assert len(lines) == 1 and text in lines[0], message
    assert "logs[0]" not in message


def test_month_ages_count_on_the_calendar_and_are_said_in_words() -> None:
    """delete_after: 1mo on 31 March reaches back to 3 March (as keep_within counts it)."""
    now = datetime(2026, 3, 31, 6, tzinfo=UTC).timestamp()
    cut = cutoffs(rule(delete_after="1mo", compress_after="1d"), now)
    assert cut["delete"].moment == datetime(2026, 3, 3, 6, tzinfo=UTC).timestamp()
    assert cut["delete"].words() == "older than 1 month, before 2026-03-03 06:00 UTC"
    assert cut["compress"].to_dict() == {
        "age": "1 day",
        "before": "2026-03-30T06:00:00Z",
        "text": "older than 1 day, before 2026-03-30 06:00 UTC",
    }
    day = 86400  # 29 days is past 1mo here (a fixed 30-day month would keep it)
    files = [LogFile(b"/srv/app/logs/a.log", "f", 1, now - 29 * day)]
    files.append(LogFile(b"/srv/app/logs/b.log", "f", 1, now - 27 * day))
    actions = [d.action for d in plan_by_age(rule(delete_after="1mo"), files, now)]
    assert actions == [Action.DELETE, Action.KEEP]


def test_odd_names_are_shown_on_one_line_without_losing_bytes() -> None:
    assert display_path(b"/l/caf\xe9 new\nline.log") == "/l/caf\\xe9 new\\nline.log"
