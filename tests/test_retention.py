"""Retention keeps what restic's `forget` would keep, never the wrong thing, and refuses nonsense.

Three layers: hand-written histories for each rule, hypothesis properties for the safety rules,
and a comparison with the real `restic forget --dry-run` over a real restic repository.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from backups.tasks.retention import (
    CLOCK_SKEW,
    UNLIMITED,
    Decision,
    Policy,
    Snapshot,
    plan_retention,
)
from maintenance.errors import ConfigError
from maintenance.settings import Age
from maintenance.settings.backup import RetentionSettings
from maintenance.settings.problems import problems_of
from tests.restic_repo import ResticRepo

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
COUNT_KEYS = (
    "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly"
)  # fmt: skip


def at(text: str) -> datetime:
    """'2024-12-31 12:00' (or with seconds) as a UTC time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def history(*times: str) -> list[Snapshot]:
    return [Snapshot(f"db1/app/{at(text):%Y%m%dT%H%M%SZ}.dump", at(text)) for text in times]


def rules(**raw: object) -> Policy:
    """The policy the inventory's `backup.retention` RAW gives, read by the settings model."""
    return Policy.from_settings(RetentionSettings.model_validate(raw))


def age(months: int = 0, days: int = 0, hours: int = 0) -> Age:
    """An Age as the grammar would parse it, written back in the grammar ('1y6mo2d')."""
    parts = [(months // 12, "y"), (months % 12, "mo"), (days, "d"), (hours, "h")]
    text = "".join(f"{amount}{unit}" for amount, unit in parts if amount) or "0h"
    return Age(months, days * 86400 + hours * 3600, text)


def kept(decision: Decision) -> dict[str, list[str]]:
    """Kept backups as {'YYYY-mm-dd HH:MM': reasons}, newest first."""
    return {f"{snapshot.time:%Y-%m-%d %H:%M}": why for snapshot, why in decision.keep}


# --- each rule, by hand -------------------------------------------------------------------------


def test_keep_last_keeps_the_newest_n() -> None:
    """keep_last 3 keeps the three newest backups and removes the rest."""
    backups = history(
        "2024-12-01 01:00",
        "2024-12-02 01:00",
        "2024-12-03 01:00",
        "2024-12-04 01:00",
        "2024-12-05 01:00",
    )
    decision = plan_retention(backups, Policy(keep_last=3), NOW)
    assert kept(decision) == {
        "2024-12-05 01:00": ["last 1", "newest"],
        "2024-12-04 01:00": ["last 2"],
        "2024-12-03 01:00": ["last 3"],
    }
    assert [snapshot.time for snapshot in decision.remove] == [
        at("2024-12-02 01:00"),
        at("2024-12-01 01:00"),
    ]


def test_keep_hourly_keeps_the_newest_backup_of_each_hour() -> None:
    """Three backups in one hour count as one hour: only the newest of them is kept."""
    backups = history(
        "2024-12-05 08:10",
        "2024-12-05 09:05",
        "2024-12-05 09:35",
        "2024-12-05 09:55",
        "2024-12-05 10:00",
        "2024-12-05 07:00",
    )
    decision = plan_retention(backups, Policy(keep_hourly=3), NOW)
    assert kept(decision) == {
        "2024-12-05 10:00": ["hourly 1", "newest"],
        "2024-12-05 09:55": ["hourly 2"],
        "2024-12-05 08:10": ["hourly 3"],
    }


def test_keep_daily_keeps_the_newest_backup_of_each_day() -> None:
    """Two backups a day over four days, keep_daily 2: the evening backup of the last two days."""
    backups = history(*(f"2024-12-0{day} {hour:02d}:00" for day in range(1, 5) for hour in (6, 18)))
    decision = plan_retention(backups, Policy(keep_daily=2), NOW)
    assert kept(decision) == {
        "2024-12-04 18:00": ["daily 1", "newest"],
        "2024-12-03 18:00": ["daily 2"],
    }
    assert len(decision.remove) == 6


def test_keep_daily_buckets_are_utc_days() -> None:
    """01:30+02:00 on 5 Dec is 23:30 UTC on 4 Dec: days are UTC days, whatever the offset."""
    local = timezone(timedelta(hours=2))
    backups = [
        Snapshot("late", datetime(2024, 12, 5, 1, 30, tzinfo=local)),  # 2024-12-04 23:30 UTC
        Snapshot("earlier", datetime(2024, 12, 4, 20, 0, tzinfo=UTC)),
        Snapshot("day-before", datetime(2024, 12, 3, 20, 0, tzinfo=UTC)),
    ]
    decision = plan_retention(backups, Policy(keep_daily=2), NOW)
    assert [snapshot.key for snapshot, _ in decision.keep] == ["late", "day-before"]


def test_keep_weekly_uses_iso_weeks_across_the_new_year() -> None:
    """Mon 30 Dec 2024 is in ISO week 2025-W01 with 5 Jan 2025; Sun 29 Dec is 2024-W52."""
    backups = history(
        "2025-01-05 03:00", "2024-12-30 03:00", "2024-12-29 03:00", "2024-12-20 03:00"
    )
    decision = plan_retention(backups, Policy(keep_weekly=2), NOW)
    assert kept(decision) == {
        "2025-01-05 03:00": ["weekly 1", "newest"],
        "2024-12-29 03:00": ["weekly 2"],
    }


def test_keep_monthly_and_yearly_keep_the_newest_of_each_month_and_year() -> None:
    """Monthly and yearly buckets each keep the newest backup of their month or year."""
    backups = history(
        "2024-12-31 23:59",
        "2024-12-01 00:00",
        "2024-11-30 23:59",
        "2024-02-29 12:00",
        "2023-12-31 12:00",
        "2023-06-01 12:00",
        "2022-01-01 00:00",
    )
    decision = plan_retention(backups, Policy(keep_monthly=2, keep_yearly=2), NOW)
    assert kept(decision) == {
        "2024-12-31 23:59": ["monthly 1", "yearly 1", "newest"],
        "2024-11-30 23:59": ["monthly 2"],
        "2023-12-31 12:00": ["yearly 2"],
    }


def test_unused_counts_keep_the_oldest_backup_too() -> None:
    """keep_daily 7 with three days of history also keeps the oldest backup (restic >= 0.16)."""
    backups = history(
        "2024-12-03 18:00",
        "2024-12-03 06:00",
        "2024-12-02 18:00",
        "2024-12-01 18:00",
        "2024-12-01 06:00",
    )
    decision = plan_retention(backups, Policy(keep_daily=7), NOW)
    assert kept(decision) == {
        "2024-12-03 18:00": ["daily 1", "newest"],
        "2024-12-02 18:00": ["daily 2"],
        "2024-12-01 18:00": ["daily 3"],
        "2024-12-01 06:00": ["daily 4 (oldest)"],
    }


def test_minus_one_keeps_one_backup_per_bucket_without_limit() -> None:
    """keep_monthly -1 keeps the newest backup of every month, and the oldest backup."""
    backups = history(
        *(
            f"20{year}-{month:02d}-{day:02d} 01:00"
            for year in (22, 23, 24)
            for month in range(1, 13)
            for day in (1, 15)
        )
    )
    decision = plan_retention(backups, Policy(keep_monthly=UNLIMITED), NOW)
    assert len(decision.keep) == 36 + 1
    assert kept(decision)["2022-01-01 01:00"] == ["monthly 37 (oldest)"]
    assert all(snapshot.time.day == 1 for snapshot in decision.remove)


def test_keep_within_is_measured_from_the_newest_backup_not_from_now() -> None:
    """Backups stopped two months ago: keep_within 7d still keeps the last week of them."""
    backups = history(*(f"2024-10-{day:02d} 02:00" for day in range(1, 31)))
    decision = plan_retention(backups, rules(keep_within="7d"), NOW)
    assert list(kept(decision)) == [f"2024-10-{day} 02:00" for day in range(30, 23, -1)]
    assert kept(decision)["2024-10-30 02:00"] == ["within 7d", "newest"]


def test_keep_within_months_roll_over_as_restic_does() -> None:
    """'1mo' before 31 March is 2 March (Go's AddDate rolls 31 Feb over), the cut is strict."""
    backups = history(
        "2024-03-31 12:00", "2024-03-02 12:01", "2024-03-02 12:00", "2024-03-01 13:00"
    )
    decision = plan_retention(backups, rules(keep_within="1mo"), NOW)
    assert list(kept(decision)) == ["2024-03-31 12:00", "2024-03-02 12:01"]


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("30d", age(days=30)),
        ("2w", age(days=14)),
        ("1y6mo", age(months=18)),
        ("1y 2mo 3d 4h", age(months=14, days=3, hours=4)),
        ("36H", age(hours=36)),
        ("12 months", age(months=12)),
    ],
)
def test_keep_within_lengths_are_written_in_the_product_grammar(text: str, length: Age) -> None:
    """keep_within reads y, mo (calendar units, as restic's y and m), w, d and h."""
    within = rules(keep_within=text).keep_within
    assert within is not None
    assert (within.months, within.seconds) == (length.months, length.seconds)


# --- safety rules ------------------------------------------------------------------------------


def test_future_dated_backup_is_kept_and_does_not_anchor_the_rules() -> None:
    """A bogus 2099 backup is kept as future-dated; keep_last and keep_within ignore it."""
    backups = history(
        "2099-01-01 00:00",
        "2024-12-31 12:00",
        "2024-12-31 06:00",
        "2024-12-30 12:00",
        "2024-12-29 12:00",
    )
    decision = plan_retention(backups, rules(keep_last=1, keep_within="1d"), NOW)
    assert kept(decision) == {
        "2099-01-01 00:00": ["future-dated"],
        "2024-12-31 12:00": ["within 1d", "last 1", "newest"],
        "2024-12-31 06:00": ["within 1d"],
    }


def test_backup_within_the_clock_skew_counts_as_the_newest() -> None:
    """A backup a few minutes ahead of this host's clock (clock skew) is the newest, not future."""
    ahead = NOW + CLOCK_SKEW - timedelta(minutes=1)
    backups = [Snapshot("ahead", ahead), *history("2024-12-31 12:00")]
    decision = plan_retention(backups, Policy(keep_last=1), NOW)
    assert [(snapshot.key, why) for snapshot, why in decision.keep] == [
        ("ahead", ["last 1", "newest"])
    ]


def test_only_future_dated_backups_are_all_kept() -> None:
    """With nothing but future-dated backups there is nothing the rules may touch."""
    decision = plan_retention(
        history("2099-01-01 00:00", "2098-01-01 00:00"), Policy(keep_last=1), NOW
    )
    assert [why for _, why in decision.keep] == [["future-dated"], ["future-dated"]]
    assert decision.remove == []


def test_empty_policy_is_refused() -> None:
    """A policy without any rule would delete everything: refused, at load and at plan time."""
    with pytest.raises(ValidationError, match="no keep rule is set"):
        RetentionSettings.model_validate({"keep_daily": 0, "keep_last": None})
    with pytest.raises(ConfigError, match="no keep rule is set"):
        plan_retention(history("2024-12-31 12:00"), Policy(), NOW)


@pytest.mark.parametrize(
    ("raw", "key", "says"),
    [
        ({"keep_daily": -2}, "keep_daily", "at least -1"),
        ({"keep_weekly": 1.5}, "keep_weekly", "whole number"),
        ({"keep_monthly": "twelve"}, "keep_monthly", "expected a number"),
        ({"keep_last": True}, "keep_last", "expected a number"),
        ({"keep_within": "6m"}, "keep_within", "ambiguous: write 6min or 6mo"),
        ({"keep_within": 30}, "keep_within", "ambiguous: write 30min or 30mo"),
        ({"keep_within": "15min"}, "keep_within", "whole hours"),
        ({"keep_within": "0d"}, "keep_within", "longer than zero"),
        ({"keep_within": "30 dayz"}, "keep_within", "unknown unit"),
        ({"keep_daly": 7}, "keep_daly", "did you mean 'keep_daily'?"),
    ],
)
def test_bad_policy_values_name_the_key(raw: dict, key: str, says: str) -> None:
    """Each bad value is refused at its key with what was expected."""
    with pytest.raises(ValidationError) as error:
        RetentionSettings.model_validate({"keep_yearly": 3, **raw})
    [(loc, words)] = problems_of(error.value, RetentionSettings)
    assert loc == (key,) and says in words, (loc, words)


def test_all_bad_keys_are_reported_together() -> None:
    """Every problem is reported, so a user fixes the policy in one go."""
    with pytest.raises(ValidationError) as error:
        RetentionSettings.model_validate({"keep_daily": -5, "keep_hours": 2, "keep_within": "x"})
    locs = {loc for loc, _ in problems_of(error.value, RetentionSettings)}
    assert locs == {("keep_daily",), ("keep_hours",), ("keep_within",)}


def test_counts_written_as_strings_and_minus_one_are_accepted() -> None:
    """'7' and '-1' (e.g. from flags or env) parse as counts; -1 means no limit."""
    policy = rules(keep_daily="7", keep_yearly="-1", keep_weekly=None)
    assert policy == Policy(keep_daily=7, keep_yearly=UNLIMITED)


def test_backups_with_the_same_time_are_counted_one_by_one() -> None:
    """Twin backups: keep_last 2 keeps both, keep_daily 1 keeps one of them, always the same."""
    twins = [
        Snapshot("b.dump.zst", at("2024-12-31 12:00")),
        Snapshot("a.dump", at("2024-12-31 12:00")),
    ]
    assert len(plan_retention(twins, Policy(keep_last=2), NOW).keep) == 2
    for order in (twins, twins[::-1]):
        decision = plan_retention(order, Policy(keep_daily=1), NOW)
        assert [snapshot.key for snapshot, _ in decision.keep] == ["b.dump.zst"]


def test_time_without_zone_is_refused() -> None:
    """A naive time would be bucketed in the wrong day; it is a programming error."""
    with pytest.raises(ValueError, match="no time zone"):
        Snapshot("x", datetime(2024, 12, 31, 12))


# --- properties --------------------------------------------------------------------------------

START = datetime(2023, 1, 1, tzinfo=UTC)
counts = st.one_of(st.none(), st.integers(0, 12), st.just(UNLIMITED))
spans = st.one_of(
    st.none(),
    st.builds(
        age, months=st.integers(0, 26), days=st.integers(0, 60), hours=st.integers(0, 48)
    ).filter(lambda length: length.months or length.seconds),
)
policies = st.builds(
    Policy,
    keep_last=counts,
    keep_hourly=counts,
    keep_daily=counts,
    keep_weekly=counts,
    keep_monthly=counts,
    keep_yearly=counts,
    keep_within=spans,
).filter(lambda policy: not policy.is_empty())
# Seconds since 2023-01-01: about two years, with bursts of near-identical times.
moments = st.one_of(st.integers(0, 2 * 366 * 86400), st.integers(700 * 86400, 700 * 86400 + 7200))
histories = st.lists(moments, max_size=60).map(
    lambda offsets: [
        Snapshot(f"k{index}", START + timedelta(seconds=offset))
        for index, offset in enumerate(offsets)
    ]
)
PROPERTY_NOW = START + timedelta(days=2 * 366 + 1)
# Up to three future-dated backups (beyond the clock skew) on top of a real history.
future_histories = st.tuples(histories, st.lists(st.integers(1, 10**8), max_size=3)).map(
    lambda pair: (
        pair[0]
        + [
            Snapshot(f"future{index}", PROPERTY_NOW + CLOCK_SKEW + timedelta(seconds=seconds))
            for index, seconds in enumerate(pair[1])
        ]
    )
)
quick = settings(max_examples=200, deadline=None, database=None)


@quick
@given(backups=future_histories, policy=policies)
def test_every_backup_is_kept_or_removed_exactly_once(backups, policy) -> None:
    """keep and remove partition the input, both sorted newest first."""
    decision = plan_retention(backups, policy, PROPERTY_NOW)
    out = [snapshot for snapshot, _ in decision.keep] + decision.remove
    assert sorted(out, key=lambda s: s.key) == sorted(backups, key=lambda s: s.key)
    for part in ([snapshot for snapshot, _ in decision.keep], decision.remove):
        assert [s.time for s in part] == sorted((s.time for s in part), reverse=True)
    assert all(why for _, why in decision.keep)


@quick
@given(backups=future_histories, policy=policies)
def test_newest_and_future_dated_backups_are_never_removed(backups, policy) -> None:
    """Whatever the policy: the newest real backup and every future-dated one survive."""
    decision = plan_retention(backups, policy, PROPERTY_NOW)
    reasons = {snapshot.key: why for snapshot, why in decision.keep}
    real = [s for s in backups if s.time <= PROPERTY_NOW + CLOCK_SKEW]
    if real:
        newest = max(real, key=lambda s: (s.time, s.key))
        assert "newest" in reasons[newest.key]
    for snapshot in backups:
        if snapshot.key.startswith("future"):
            assert reasons[snapshot.key] == ["future-dated"]


@st.composite
def policy_and_extension(draw) -> tuple[Policy, Policy]:
    """A policy and another that keeps at least as much: rules added, counts or lengths raised."""
    base = draw(policies)
    changes = {}
    for name in COUNT_KEYS:
        value = getattr(base, name) or 0
        if value != UNLIMITED and draw(st.booleans()):
            changes[name] = draw(st.one_of(st.integers(value, 15), st.just(UNLIMITED)))
    if draw(st.booleans()):
        within = base.keep_within or age()
        days, rest = divmod(int(within.seconds), 86400)
        changes["keep_within"] = age(within.months, days + draw(st.integers(0, 90)), rest // 3600)
    return base, replace(base, **changes)


@quick
@given(backups=future_histories, pair=policy_and_extension())
def test_adding_keep_rules_never_removes_more(backups, pair) -> None:
    """Raising a count, adding a rule or lengthening keep_within only ever keeps more."""
    smaller, larger = pair
    kept_by_smaller = {s.key for s, _ in plan_retention(backups, smaller, PROPERTY_NOW).keep}
    kept_by_larger = {s.key for s, _ in plan_retention(backups, larger, PROPERTY_NOW).keep}
    assert kept_by_smaller <= kept_by_larger


# --- against restic itself ----------------------------------------------------------------------

TAGS = "abcde"
RESTIC_NOW = datetime(2025, 1, 1, tzinfo=UTC)  # after the history, before the real clock


@dataclass(frozen=True)
class ResticHistory:
    """A restic repository holding one backup per snapshot, each tagged with some of TAGS."""

    repo: ResticRepo
    snapshots: list[tuple[Snapshot, frozenset[str]]]

    def select(self, tag_filter: list[list[str]]) -> list[Snapshot]:
        """The snapshots restic's `--tag a,b --tag c` selects (all of a group, any group)."""
        return [
            snapshot
            for snapshot, tags in self.snapshots
            if not tag_filter or any(set(group) <= tags for group in tag_filter)
        ]

    def forget(self, policy: Policy, tag_filter: list[list[str]]) -> dict:
        """restic's answer for POLICY over the selection, as one group."""
        flags = ["--group-by", "host", *restic_flags(policy)]
        for group in tag_filter:
            flags += ["--tag", ",".join(group)]
        [group] = self.repo.forget_dry_run(flags)
        return group


def restic_flags(policy: Policy) -> list[str]:
    """POLICY as restic flags. -1 becomes a count larger than the history: that is what -1
    means in restic >= 0.16, and Debian 12's restic 0.14 predates -1."""
    flags = []
    for name in COUNT_KEYS:
        value = getattr(policy, name)
        if value:
            flags += ["--" + name.replace("_", "-"), str(10_000 if value == UNLIMITED else value)]
    within = policy.keep_within
    if within and (within.months or within.seconds):  # restic writes months as m
        days, rest = divmod(int(within.seconds), 86400)
        parts = [(within.months // 12, "y"), (within.months % 12, "m"), (days, "d")]
        text = "".join(f"{n}{unit}" for n, unit in [*parts, (rest // 3600, "h")] if n)
        flags += ["--keep-within", text]
    return flags


def restic_kept_times(group: dict) -> Counter[datetime]:
    """The times restic >= 0.16 keeps, from the answer of Debian 12's restic 0.14.

    restic 0.16 added one rule: when a count rule still has room at the oldest snapshot, the
    oldest is kept too. restic's JSON gives the counters after each kept snapshot, so the last
    kept snapshot's counters say whether room was left when the walk reached the oldest.
    """
    times = Counter(datetime.fromisoformat(item["time"]) for item in group["keep"] or [])
    removed = [datetime.fromisoformat(item["time"]) for item in group["remove"] or []]
    counters = (group["reasons"] or [{}])[-1].get("counters") or {}
    if removed and any(value > 0 for value in counters.values()):
        oldest = min([*times, *removed])
        if oldest in removed:
            times[oldest] += 1
    return times


def restic_history_times() -> list[tuple[datetime, frozenset[str]]]:
    """60 backup times over two years: the edges the rules care about, then random ones.

    Edges marked * carry every tag, so every selection holds them; the others get random tags.
    """
    rng = random.Random(20241231)
    edges = [
        "2024-12-31 12:00:00*",  # the newest, so every selection anchors keep_within here
        "2024-12-30 12:00:00",  # exactly 1d before it (keep_within is strict)
        "2024-12-30 03:00:00", "2024-12-29 23:30:00",  # ISO 2025-W01 / 2024-W52
        "2024-12-28 11:00:00", "2024-12-28 10:59:59", "2024-12-28 10:00:00",  # hour edges
        "2024-12-28 09:00:00", "2024-12-28 08:59:59",
        "2024-12-17 12:00:00",  # exactly 2w before the newest
        "2024-12-01 12:00:01", "2024-12-01 12:00:00",  # '1m' before 31 Dec is 1 Dec in Go
        "2024-11-30 13:00:00",  # kept by clamping month arithmetic, not by Go's
        "2024-10-10 09:55:00", "2024-10-10 09:35:00", "2024-10-10 09:05:00",
        "2024-06-15 08:00:00", "2024-06-15 08:00:00",  # twins
        "2024-03-01 00:00:00", "2024-02-29 23:59:59", "2023-12-31 23:00:00",
        "2023-01-02 00:00:00*", "2023-01-01 00:30:00*",  # Sun 1 Jan 2023 is in ISO 2022-W52,
        "2022-12-31 23:30:00*", "2022-12-27 12:00:00*",  # with these two
    ]  # fmt: skip
    result = [(at(text.rstrip("*")), frozenset(TAGS)) for text in edges if text.endswith("*")]
    times = [at(text) for text in edges if not text.endswith("*")]
    times += [START + timedelta(seconds=rng.randrange(2 * 365 * 86400)) for _ in range(21)]
    burst = at("2024-12-20 00:00:00")  # 14 random times within 36 hours share hours and days
    times += [burst + timedelta(seconds=rng.randrange(36 * 3600)) for _ in range(14)]
    for time in times:
        tags = frozenset(tag for tag in TAGS if rng.random() < 0.5) or frozenset(rng.choice(TAGS))
        result.append((time, tags))
    return result


@pytest.fixture(scope="module")
def restic_history(tmp_path_factory: pytest.TempPathFactory) -> ResticHistory:
    """A real restic repository with one small backup per history time."""
    repo = ResticRepo(tmp_path_factory.mktemp("restic"))
    times = restic_history_times()
    repo.backup_all([(time, sorted(tags)) for time, tags in times])
    snapshots = [(Snapshot(f"s{index}", time), tags) for index, (time, tags) in enumerate(times)]
    return ResticHistory(repo, snapshots)


tag_filters = st.lists(
    st.lists(st.sampled_from(TAGS), min_size=1, max_size=2, unique=True), max_size=2
)
TYPICAL = [
    Policy(keep_daily=7, keep_weekly=4, keep_monthly=12),
    Policy(keep_last=3),
    Policy(keep_hourly=24, keep_daily=7, keep_weekly=5),
    Policy(keep_weekly=6),
    Policy(keep_yearly=UNLIMITED, keep_monthly=6),
    Policy(keep_within=age(months=1)),
    Policy(keep_within=age(days=14), keep_monthly=6),
    Policy(keep_within=age(months=18)),
]


@settings(max_examples=200, deadline=None, database=None)
@given(policy=policies, tag_filter=tag_filters)
@example(policy=TYPICAL[0], tag_filter=[])
@example(policy=TYPICAL[1], tag_filter=[["a"]])
@example(policy=TYPICAL[2], tag_filter=[])
@example(policy=TYPICAL[3], tag_filter=[["b", "c"]])
@example(policy=TYPICAL[4], tag_filter=[])
@example(policy=TYPICAL[5], tag_filter=[])
@example(policy=TYPICAL[6], tag_filter=[["d"], ["e"]])
@example(policy=TYPICAL[7], tag_filter=[])
def test_plan_keeps_what_restic_forget_keeps(restic_history, policy, tag_filter) -> None:
    """For any policy and any subset of a two-year history, we keep the backups restic keeps."""
    selection = restic_history.select(tag_filter)
    decision = plan_retention(selection, policy, RESTIC_NOW)
    ours = Counter(snapshot.time for snapshot, _ in decision.keep)
    theirs = restic_kept_times(restic_history.forget(policy, tag_filter))
    assert ours == theirs, (
        f"policy {restic_flags(policy)} on {len(selection)} backups (--tag {tag_filter}): "
        f"only we keep {sorted(ours - theirs)}, only restic keeps {sorted(theirs - ours)}"
    )


def test_restic_history_holds_the_edge_cases(restic_history) -> None:
    """restic itself lists the 60 backups, twins included, from 2022 to the end of 2024."""
    [group] = restic_history.repo.forget_dry_run(["--group-by", "host", "--keep-last", "1000"])
    times = Counter(datetime.fromisoformat(item["time"]) for item in group["keep"])
    assert sum(times.values()) == 60
    assert times[at("2024-06-15 08:00:00")] == 2
    assert {time.year for time in times} == {2022, 2023, 2024}
