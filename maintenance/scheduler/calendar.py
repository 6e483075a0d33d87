"""Next-run arithmetic: pure functions of a cadence, a time zone and an instant given by the caller.

Nothing here reads the clock, so every rule (short months, "last", weekdays, DST gaps and
repeats) is testable with any date. Slots are returned as aware UTC datetimes.

Rules:
- An interval is aligned on the Unix epoch (every 15m fires at :00, :15, :30, :45 UTC), so every
  daemon sharing a state database computes the same slots and can claim them exactly once.
- A wall-clock time that does not exist (spring forward) fires at the same offset after the gap
  (02:30 becomes 03:30); a time that exists twice (fall back) fires once, at the first.
- Monthly day 29, 30 or 31 fires on the last day of months that are shorter; "last" always
  fires on the last day.
"""

from __future__ import annotations

import calendar as _gregorian
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from ..settings.scheduler import WEEKDAYS


@dataclass(frozen=True)
class Interval:
    """Every SECONDS seconds, aligned on the Unix epoch."""

    seconds: int

    def describe(self) -> str:
        return f"every {_format_seconds(self.seconds)}"


@dataclass(frozen=True)
class Daily:
    at: time

    def describe(self) -> str:
        return f"every day at {self.at:%H:%M}"


@dataclass(frozen=True)
class Weekly:
    weekday: int  # Monday is 0, as in datetime.weekday()
    at: time

    def describe(self) -> str:
        return f"every {WEEKDAYS[self.weekday]} at {self.at:%H:%M}"


@dataclass(frozen=True)
class Monthly:
    day: int | None  # 1..31; None is the last day of every month
    at: time

    def describe(self) -> str:
        which = "the last day" if self.day is None else f"day {self.day}"
        return f"every month on {which} at {self.at:%H:%M}"


Cadence = Interval | Daily | Weekly | Monthly


def month_day(cadence: Monthly, year: int, month: int) -> int:
    """The day of YEAR-MONTH the cadence fires on: its day, or the month's last if shorter."""
    last = _gregorian.monthrange(year, month)[1]
    return last if cadence.day is None else min(cadence.day, last)


def next_slot(cadence: Cadence, zone: tzinfo, after: datetime) -> datetime:
    """The first slot strictly after AFTER (an aware datetime), in UTC."""
    if isinstance(cadence, Interval):
        seconds = int(after.timestamp() // cadence.seconds + 1) * cadence.seconds
        return datetime.fromtimestamp(seconds, UTC)
    start = after.astimezone(zone).date() - timedelta(days=1)
    for day in _matching_days(cadence, start, step=1):
        slot = _wall_time(day, cadence.at, zone)
        if slot > after:
            return slot
    raise AssertionError("unreachable: a matching day comes at least every 31 days")


def latest_slot(cadence: Cadence, zone: tzinfo, now: datetime) -> datetime:
    """The last slot at or before NOW (an aware datetime), in UTC."""
    if isinstance(cadence, Interval):
        seconds = int(now.timestamp() // cadence.seconds) * cadence.seconds
        return datetime.fromtimestamp(seconds, UTC)
    start = now.astimezone(zone).date() + timedelta(days=1)
    for day in _matching_days(cadence, start, step=-1):
        slot = _wall_time(day, cadence.at, zone)
        if slot <= now:
            return slot
    raise AssertionError("unreachable: a matching day comes at least every 31 days")


def upcoming(cadence: Cadence, zone: tzinfo, after: datetime, count: int) -> list[datetime]:
    """The next COUNT slots after AFTER, in order."""
    slots: list[datetime] = []
    for _ in range(count):
        after = next_slot(cadence, zone, after)
        slots.append(after)
    return slots


def jitter_offset(key: str, slot: datetime, jitter: timedelta) -> timedelta:
    """A delay in [0, JITTER) that depends only on KEY and SLOT.

    Stable rather than random, so `schedule.list` shows the real start time and every daemon
    agrees on it; different jobs and slots still spread out.
    """
    if jitter <= timedelta(0):
        return timedelta(0)
    digest = hashlib.sha256(f"{key}|{slot.isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return timedelta(seconds=int(jitter.total_seconds() * fraction))


def _matching_days(cadence: Daily | Weekly | Monthly, start: date, step: int) -> Iterator[date]:
    day = start
    while True:
        if _matches(cadence, day):
            yield day
        day += timedelta(days=step)


def _matches(cadence: Daily | Weekly | Monthly, day: date) -> bool:
    if isinstance(cadence, Weekly):
        return day.weekday() == cadence.weekday
    if isinstance(cadence, Monthly):
        return day.day == month_day(cadence, day.year, day.month)
    return True


def _wall_time(day: date, at: time, zone: tzinfo) -> datetime:
    """DAY at AT in ZONE as UTC; fold=0 maps a skipped time past the gap, a repeated one first."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _format_seconds(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
