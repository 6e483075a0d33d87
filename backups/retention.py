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
  arithmetic, as Go's AddDate: '1m' before 31 Dec is 1 Dec). It is measured from the newest
  backup, not from the clock, so a host whose backups stopped does not lose them all.
- A rule set to 0 (or a keep_within of zero length) is off; a policy with no rule on is refused.

Our own rules on top: the newest backup is always kept, and a backup dated in the future (more
than CLOCK_SKEW after now) is never deleted and takes no part in the rules, so a bogus 2099
timestamp cannot make keep_last or keep_within throw away the real history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from maintenance.errors import ConfigError

CLOCK_SKEW = timedelta(minutes=5)
UNLIMITED = -1

_SPAN_PART = re.compile(r"(\d+)([ymwdh])")
_SPAN_HELP = "a length like 12h, 30d, 2w, 6m (months) or 1y6m"
_INTEGER = re.compile(r"-?\d+")


@dataclass(frozen=True)
class Span:
    """A keep_within length as restic writes it: calendar years and months, days, hours.

    Months and years are calendar units, not fixed numbers of days, so '1y' before a date is
    the same date a year earlier, leap years included.
    """

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> Span:
        """Parse '36h', '30d', '2w', '6m', '1y6m' (y years, m months, w weeks, d days, h hours).

        'm' is months, as in restic. Raise ValueError for anything else.
        """
        compact = text.strip().lower().replace(" ", "")
        parts = _SPAN_PART.findall(compact)
        units = [unit for _, unit in parts]
        if not parts or "".join(n + u for n, u in parts) != compact or len(set(units)) < len(units):
            raise ValueError(f"expected {_SPAN_HELP}, got {text!r}")
        amount = {unit: int(number) for number, unit in parts}
        return cls(
            years=amount.get("y", 0),
            months=amount.get("m", 0),
            days=amount.get("d", 0) + 7 * amount.get("w", 0),
            hours=amount.get("h", 0),
        )

    @classmethod
    def from_timedelta(cls, length: timedelta) -> Span:
        """A fixed length in whole hours as a span. Raise ValueError for negative or finer ones."""
        if length < timedelta(0) or length % timedelta(hours=1):
            raise ValueError(f"expected a non-negative whole number of hours, got {length}")
        return cls(days=length.days, hours=length.seconds // 3600)

    def is_zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def before(self, moment: datetime) -> datetime | None:
        """MOMENT minus this span, normalised as Go's AddDate does; None if before year 1.

        Go normalises an impossible date by rolling over (31 Mar - 1 month = 31 Feb = 3 Mar)
        rather than clamping to the month's end; restic inherits that, so we do too.
        """
        month_index = moment.year * 12 + moment.month - 1 - self.years * 12 - self.months
        year, month = divmod(month_index, 12)
        try:
            first = moment.replace(year=year, month=month + 1, day=1)
            return first + timedelta(days=moment.day - 1 - self.days, hours=-self.hours)
        except (ValueError, OverflowError):
            return None

    def __str__(self) -> str:
        text = "".join(
            f"{amount}{unit}"
            for amount, unit in zip(
                (self.years, self.months, self.days, self.hours), "ymdh", strict=True
            )
            if amount
        )
        return text or "0h"


@dataclass(frozen=True)
class Policy:
    """Keep rules for the backups of one host and database (see the module docstring).

    None or 0 turns a rule off; -1 (UNLIMITED) keeps one backup per bucket without limit.
    keep_within also accepts a timedelta of whole hours, stored as a Span.
    """

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: Span | timedelta | None = None

    def __post_init__(self) -> None:
        problems = _value_problems(
            {field.name: getattr(self, field.name) for field in fields(self)}
        )
        if problems:
            raise ConfigError("retention: " + "; ".join(problems))
        if isinstance(self.keep_within, timedelta):
            object.__setattr__(self, "keep_within", Span.from_timedelta(self.keep_within))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "retention") -> Policy:
        """Build a policy from vars such as {'keep_daily': 7, 'keep_within': '30d'}.

        Raise ConfigError naming WHERE and every offending key at once: unknown keys, counts
        that are not whole numbers >= -1, lengths restic would not understand, and a policy
        with no rule on (applying it would delete every backup).
        """
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping of keep rules such as keep_daily: 7, "
                f"got {type(raw).__name__}"
            )
        known = [field.name for field in fields(cls)]
        problems: list[str] = []
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in known:
                problems.append(f"unknown key {key!r} (known: {', '.join(known)})")
            elif key == "keep_within" and isinstance(value, str):
                try:
                    values[key] = Span.parse(value)
                except ValueError as exc:
                    problems.append(f"key {key!r}: {exc}")
            elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
                values[key] = int(value)
            else:
                values[key] = value
        problems += _value_problems(values)
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems))
        policy = cls(**values)
        if policy.is_empty():
            raise ConfigError(f"{where}: {_EMPTY_POLICY}")
        return policy

    def is_empty(self) -> bool:
        """True when no rule is on: such a policy would keep nothing but the newest backup."""
        within = self.keep_within
        counts_off = all(not getattr(self, rule.key) for rule in _COUNT_RULES)
        return counts_off and (within is None or (isinstance(within, Span) and within.is_zero()))


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
_EMPTY_POLICY = (
    "no keep rule is set (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, "
    "keep_yearly or keep_within); an empty policy would delete every backup but the newest"
)


def _value_problems(values: Mapping[str, Any]) -> list[str]:
    """What is wrong with already-typed rule values, one message per key."""
    problems = []
    for key, value in values.items():
        if value is None:
            continue
        if key == "keep_within":
            if isinstance(value, timedelta):
                try:
                    Span.from_timedelta(value)
                except ValueError as exc:
                    problems.append(f"key {key!r}: {exc}")
            elif not isinstance(value, Span):
                problems.append(f"key {key!r}: expected {_SPAN_HELP}, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int) or value < UNLIMITED:
            problems.append(
                f"key {key!r}: expected a whole number of backups, or -1 for no limit, "
                f"got {value!r}"
            )
    return problems


def plan_retention(snapshots: Sequence[Snapshot], policy: Policy, now: datetime) -> Decision:
    """Decide which of SNAPSHOTS POLICY keeps at NOW (tz-aware) and which it removes.

    Every input snapshot ends up in exactly one of the two lists. Raise ConfigError if the
    policy is empty, ValueError if NOW has no time zone.
    """
    if policy.is_empty():
        raise ConfigError(f"retention: {_EMPTY_POLICY}")
    if now.utcoffset() is None:
        raise ValueError(f"now ({now}) has no time zone")
    horizon = now + CLOCK_SKEW
    ordered = sorted(snapshots, key=lambda snapshot: (snapshot.time, snapshot.key), reverse=True)
    future = [snapshot for snapshot in ordered if snapshot.time > horizon]
    candidates = ordered[len(future) :]
    reasons = _rule_reasons([snapshot.time.astimezone(UTC) for snapshot in candidates], policy)
    if candidates:
        reasons[0].append("newest")
    keep = [(snapshot, ["future-dated"]) for snapshot in future]
    keep += [(snapshot, why) for snapshot, why in zip(candidates, reasons, strict=True) if why]
    remove = [snapshot for snapshot, why in zip(candidates, reasons, strict=True) if not why]
    return Decision(keep=keep, remove=remove)


def _rule_reasons(times: Sequence[datetime], policy: Policy) -> list[list[str]]:
    """For TIMES (UTC, newest first), the keep rules each one satisfies, in restic's order.

    restic evaluates every rule in one pass, but each rule only looks at its own bucket and
    counter, so evaluating them one after another gives the same answer.
    """
    reasons: list[list[str]] = [[] for _ in times]
    within = policy.keep_within
    if isinstance(within, Span) and not within.is_zero() and times:
        cutoff = within.before(times[0])
        for position, time in enumerate(times):
            if cutoff is None or time > cutoff:
                reasons[position].append(f"within {within}")
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
