"""Which backups to keep: restic's `forget` keep rules, plus two safety rules of our own.

The keep rules behave exactly as restic's `forget` does (internal/restic/snapshot_policy.go),
so a policy people already trust with restic means the same thing here:

- keep_last N keeps the N newest backups; keep_hourly / daily / weekly / monthly / yearly N
  walk the backups newest first and keep the newest one of each of the N most recent hours,
  days, ISO weeks, months or years that have a backup. Buckets are computed in UTC.
- -1 instead of N means "no limit": one backup of every hour/day/week/... there is.
- While a count rule still has room when the walk reaches the oldest backup, that oldest
  backup is kept too, so a young history keeps its full length (restic >= 0.16).
- keep_within keeps every backup newer than the newest backup minus the length (calendar
  arithmetic, as Go's AddDate: '1mo' before 31 Dec is 1 Dec, before 31 Mar it is 3 Mar). It
  is measured from the newest backup, not from the clock, so a host whose backups stopped
  does not lose them all. Lengths are written in the product's grammar: 30d, 2w, 12mo, 1y6mo.
- A rule set to 0 is off; a policy with no rule on is refused (RetentionSettings, at load).

Our own rules on top: the newest backup is always kept, and a backup dated in the future (more
than CLOCK_SKEW after now, catalog.in_future) is never deleted and takes no part in the rules,
so a bogus 2099 timestamp cannot make keep_last or keep_within throw away the real history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from backups.archive.catalog import CLOCK_SKEW, in_future
from maintenance.errors import ConfigError
from maintenance.settings import Age
from maintenance.settings.backup import EMPTY_POLICY, UNLIMITED, RetentionSettings

__all__ = [
    "CLOCK_SKEW",
    "UNLIMITED",
    "Decision",
    "Policy",
    "Snapshot",
    "plan_retention",
    "within_cutoff",
]


@dataclass(frozen=True)
class Policy:
    """Keep rules for the backups of one host and database (see the module docstring).

    None or 0 turns a rule off; -1 (UNLIMITED) keeps one backup per bucket without limit.
    The values are checked where they are read (RetentionSettings), not here.
    """

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: Age | None = None

    @classmethod
    def from_settings(cls, rules: RetentionSettings) -> Policy:
        return cls(**{field.name: getattr(rules, field.name) for field in fields(cls)})

    def is_empty(self) -> bool:
        """True when no rule is on: such a policy would keep nothing but the newest backup."""
        counts_off = all(not getattr(self, rule.key) for rule in _COUNT_RULES)
        return counts_off and self.keep_within is None


@dataclass(frozen=True)
class Snapshot:
    """One complete backup: its key in the store (opaque here) and its start time."""

    key: str
    time: datetime

    def __post_init__(self) -> None:
        if self.time.utcoffset() is None:
            raise ValueError(f"backup {self.key!r}: time {self.time} has no time zone")


@dataclass(frozen=True)
class Decision:
    """What a policy does to a list of backups; both lists are sorted newest first.

    Each kept backup comes with the reasons keeping it, e.g. ["last 1", "daily 1", "newest"];
    "daily 3" means it is the newest backup of the third most recent day that has one.
    """

    keep: list[tuple[Snapshot, list[str]]]
    remove: list[Snapshot]
    cutoff: datetime | None = None  # keep_within keeps the backups after this


@dataclass(frozen=True)
class _CountRule:
    key: str
    label: str
    bucket: Callable[[datetime, int], object]


_COUNT_RULES = (
    _CountRule("keep_last", "last", lambda _time, position: position),
    _CountRule("keep_hourly", "hourly", lambda time, _: (time.date(), time.hour)),
    _CountRule("keep_daily", "daily", lambda time, _: time.date()),
    _CountRule("keep_weekly", "weekly", lambda time, _: time.isocalendar()[:2]),
    _CountRule("keep_monthly", "monthly", lambda time, _: (time.year, time.month)),
    _CountRule("keep_yearly", "yearly", lambda time, _: time.year),
)


def plan_retention(snapshots: Sequence[Snapshot], policy: Policy, now: datetime) -> Decision:
    """Decide which of SNAPSHOTS POLICY keeps at NOW (tz-aware) and which it removes.

    Every input snapshot ends up in exactly one of the two lists. Raise ConfigError if the
    policy is empty, ValueError if NOW has no time zone.
    """
    if policy.is_empty():
        raise ConfigError(f"retention: {EMPTY_POLICY}")
    if now.utcoffset() is None:
        raise ValueError(f"now ({now}) has no time zone")
    ordered = sorted(snapshots, key=lambda snapshot: (snapshot.time, snapshot.key), reverse=True)
    future = [snapshot for snapshot in ordered if in_future(snapshot.time, now)]
    candidates = ordered[len(future) :]
    times = [snapshot.time.astimezone(UTC) for snapshot in candidates]
    cutoff = within_cutoff(policy.keep_within, times[0]) if policy.keep_within and times else None
    reasons = _rule_reasons(times, policy, cutoff)
    if candidates:
        reasons[0].append("newest")
    keep = [(snapshot, ["future-dated"]) for snapshot in future]
    keep += [(snapshot, why) for snapshot, why in zip(candidates, reasons, strict=True) if why]
    remove = [snapshot for snapshot, why in zip(candidates, reasons, strict=True) if not why]
    return Decision(keep=keep, remove=remove, cutoff=cutoff)


def within_cutoff(within: Age, newest: datetime) -> datetime:
    """NEWEST minus WITHIN on the calendar, as Go's AddDate (restic): the earliest moment
    there is, when the age reaches before year 1."""
    try:
        return within.before(newest)
    except (ValueError, OverflowError):
        return datetime.min.replace(tzinfo=UTC)


def _rule_reasons(
    times: Sequence[datetime], policy: Policy, cutoff: datetime | None
) -> list[list[str]]:
    """For TIMES (UTC, newest first), the keep rules each one satisfies, in restic's order.

    restic evaluates every rule in one pass, but each rule only looks at its own bucket and
    counter, so evaluating them one after another gives the same answer.
    """
    reasons: list[list[str]] = [[] for _ in times]
    if cutoff is not None:
        for position, time in enumerate(times):
            if time > cutoff:
                reasons[position].append(f"within {policy.keep_within}")
    oldest = len(times) - 1
    for rule in _COUNT_RULES:
        count = getattr(policy, rule.key)
        if not count:
            continue
        kept = 0
        previous: object = None
        for position, time in enumerate(times):
            if count != UNLIMITED and kept == count:
                break
            bucket = rule.bucket(time, position)
            repeat = kept > 0 and bucket == previous
            if repeat and position != oldest:
                continue
            kept += 1
            reasons[position].append(f"{rule.label} {kept}" + (" (oldest)" if repeat else ""))
            previous = bucket
    return reasons
