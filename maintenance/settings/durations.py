"""One duration grammar for every flag and var: '30s', '15min', '6h', '14d', '2w', '12mo', '1y'.

Two readings exist because one letter is ambiguous. `m` is minutes to systemd and Prometheus
and months to restic, and a user who meant one and got the other deletes data a thousand
times too early. So where an age selects data to delete (`Age`), a bare `m` and a bare number
are refused; everywhere else (`parse_duration`: cadences, timeouts, query ages) `m` stays
minutes and a bare number stays seconds.

`mo` and `y` are calendar units in an age (12mo before 2026-03-31 is 2025-03-31); where a
fixed length is needed (a threshold, a cadence) they count 30 and 365 days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_UNITS: dict[str, tuple[str, float]] = {}
for _names, _kind, _size in (
    (("y", "yr", "yrs", "year", "years"), "months", 12),
    (("mo", "mon", "month", "months"), "months", 1),
    (("w", "wk", "wks", "week", "weeks"), "seconds", 7 * 86400),
    (("d", "day", "days"), "seconds", 86400),
    (("h", "hr", "hrs", "hour", "hours"), "seconds", 3600),
    (("min", "mins", "minute", "minutes"), "seconds", 60),
    (("s", "sec", "secs", "second", "seconds"), "seconds", 1),
    (("m",), "seconds", 60),
):
    for _name in _names:
        _UNITS[_name] = (_kind, _size)

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
EXAMPLES = "30s, 15min, 6h, 14d, 2w, 12mo, 1y or 1h30min"
AMBIGUOUS = "ambiguous: write {n}min or {n}mo"
_DAYS_PER_MONTH = 30
MAX_YEARS = 1000  # longer is a typo, and past what a timedelta or a calendar date can hold
_MAX_SECONDS = MAX_YEARS * 365 * 86400
TOO_LONG = f"too long: at most {MAX_YEARS} years"


@dataclass(frozen=True)
class Age:
    """A length made of calendar months and seconds, as written: '12mo', '90d', '1y6mo'."""

    months: int
    seconds: float
    text: str

    def before(self, moment: datetime) -> datetime:
        """MOMENT minus this age, months counted on the calendar (31 Mar - 1mo = 3 Mar, as Go).

        Raise ValueError when the result would fall before year 1.
        """
        index = moment.year * 12 + moment.month - 1 - self.months
        year, month = divmod(index, 12)
        try:
            first = moment.replace(year=year, month=month + 1, day=1)
        except ValueError:
            raise ValueError(f"{self.text} reaches before year 1") from None
        return first + timedelta(days=moment.day - 1, seconds=-self.seconds)

    def approximate(self) -> timedelta:
        """A fixed length: a month counts 30 days, a year 365 (for thresholds and cadences)."""
        years, months = divmod(self.months, 12)
        try:
            return timedelta(days=365 * years + _DAYS_PER_MONTH * months, seconds=self.seconds)
        except OverflowError:
            raise ValueError(f"{TOO_LONG}, got {self.text!r}") from None

    def words(self) -> str:
        """'12 months', '1 year 6 months', '90 days', '1 hour 30 minutes'."""
        years, months = divmod(self.months, 12)
        parts = [(years, "year"), (months, "month")]
        rest = round(self.seconds)
        for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
            parts.append((rest // size, unit))
            rest %= size
        said = [f"{amount} {unit}{'' if amount == 1 else 's'}" for amount, unit in parts if amount]
        return " ".join(said) or "0 seconds"

    def cutoff_words(self, now: datetime) -> str:
        """'older than 14 days, before 2026-11-22 06:00 UTC': how a destructive dry run says
        what it selects. Raise ValueError as `before` does."""
        moment = self.before(now).astimezone(UTC)
        return f"older than {self.words()}, before {moment:%Y-%m-%d %H:%M} UTC"

    def __str__(self) -> str:
        return self.text


def duration_words(length: timedelta | float) -> str:
    """A fixed length (a timedelta or seconds) in the grammar's words: '2 hours',
    '1 day 6 hours', '0.5 seconds'; how a problem says a duration, never as `2:00:00`."""
    seconds = length.total_seconds() if isinstance(length, timedelta) else float(length)
    if 0 < seconds < 60 and not seconds.is_integer():
        return f"{seconds:g} seconds"
    return Age(0, seconds, "").words()


def parse_age(value: object, *, deletes: bool) -> Age:
    """Parse VALUE in the grammar above. Raise ValueError saying what is expected.

    DELETES: the age selects data to delete, so a bare number or a bare `m` is refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration like {EXAMPLES}, got {value!r}")
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        if deletes:
            raise ValueError(AMBIGUOUS.format(n=text) + f" (or {text}d), not a bare number")
        seconds = float(text)
        if seconds > _MAX_SECONDS:
            raise ValueError(f"{TOO_LONG}, got {value!r}")
        return Age(0, int(seconds) if seconds.is_integer() else seconds, text)
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip():
        raise ValueError(f"expected a duration like {EXAMPLES}, got {value!r}")
    months, seconds = 0, 0.0
    for number, unit in parts:
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {unit!r} in {value!r} (use s, min, h, d, w, mo, y)")
        if unit == "m" and deletes:
            raise ValueError(AMBIGUOUS.format(n=number))
        kind, size = _UNITS[unit]
        if kind == "months":
            if not number.isdigit():
                raise ValueError(f"months and years must be whole numbers, got {value!r}")
            if len(number) > 9:  # int() of thousands of digits is itself refused
                raise ValueError(f"{TOO_LONG}, got {value!r}")
            months += int(number) * int(size)
        else:
            seconds += float(number) * size
    years, rest = divmod(months, 12)
    if (365 * years + _DAYS_PER_MONTH * rest) * 86400 + seconds > _MAX_SECONDS:
        raise ValueError(f"{TOO_LONG}, got {value!r}")
    return Age(months, int(seconds) if seconds.is_integer() else seconds, str(value).strip())


def parse_duration(value: object) -> timedelta:
    """A fixed length where `m` is minutes and a bare number seconds. Raise ValueError."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return parse_age(value, deletes=False).approximate()
