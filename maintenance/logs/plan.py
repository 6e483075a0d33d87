"""What a rule does to each of its files: pure decisions from a listing and the host's clock.

Age decides first (delete past `delete_after`, compress past `compress_after`); the size cap
then deletes the oldest remaining files until the rule's files fit. Files modified within
`min_age`, symbolic links and anything but single-link regular files are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ..errors import ConfigError
from ..settings.durations import Age
from ..settings.logs import LogRule
from ..units import format_duration, format_size
from .rules import COMPRESSED_SUFFIXES, codec_suffix, matches, owns

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Action(StrEnum):
    COMPRESS = "compress"
    DELETE = "delete"
    KEEP = "keep"
    SKIP = "skip"


@dataclass(frozen=True)
class LogFile:
    """One entry of the host's listing: an absolute path (bytes, as the filesystem has it)."""

    path: bytes
    kind: str  # find's %y: f regular file, l symbolic link, d directory, ...
    size: int
    mtime: float
    links: int = 1

    @property
    def compressed(self) -> bool:
        return self.path.endswith(COMPRESSED_SUFFIXES)


@dataclass(frozen=True)
class Decision:
    """A file's planned action; PROTECTED files (within min_age) are never touched."""

    file: LogFile
    action: Action
    reason: str
    protected: bool = False

    @property
    def acts(self) -> bool:
        return self.action in (Action.COMPRESS, Action.DELETE)


def display_path(path: bytes) -> str:
    """PATH for people and JSON, on one line: undecodable bytes and control characters
    (a newline in a name) shown as backslash escapes."""
    text = path.decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)


@dataclass(frozen=True)
class Cutoff:
    """An age of a rule and the moment it reaches back to on the host's clock.

    Months and years count on the calendar (UTC), so `delete_after: 1mo` on 31 March
    deletes what is older than 3 March, as `keep_within` counts them.
    """

    age: Age
    now: float

    @property
    def moment(self) -> float:
        """Epoch seconds; files last modified at or before it are past the age."""
        try:
            return self.age.before(datetime.fromtimestamp(self.now, UTC)).timestamp()
        except ValueError:  # reaches before year 1: nothing is that old
            return float("-inf")

    def words(self) -> str:
        """'older than 14 days, before 2026-11-22 06:00 UTC'."""
        try:
            return self.age.cutoff_words(datetime.fromtimestamp(self.now, UTC))
        except ValueError:
            return f"older than {self.age.words()}"

    def to_dict(self) -> dict[str, Any]:
        moment = self.moment
        before = None
        if moment != float("-inf"):
            before = datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
        return {"age": self.age.words(), "before": before, "text": self.words()}


def cutoffs(rule: LogRule, now: float) -> dict[str, Cutoff]:
    """The rule's age cutoffs ('delete', 'compress') on the host's clock NOW."""
    ages = {"delete": rule.delete_after, "compress": rule.compress_after}
    return {action: Cutoff(age, now) for action, age in ages.items() if age is not None}


def plan_by_age(rule: LogRule, files: Iterable[LogFile], now: float) -> list[Decision]:
    """Decide each file's fate from its age alone, oldest first; NOW is the host's clock."""
    existing = {file.path for file in files}
    bounds = {action: (cut.moment, cut.age) for action, cut in cutoffs(rule, now).items()}
    decisions = []
    for file in sorted(files, key=lambda f: (f.mtime, f.path)):
        decisions.append(_decide(rule, file, now, bounds, existing))
    return decisions


def _decide(
    rule: LogRule,
    file: LogFile,
    now: float,
    bounds: dict[str, tuple[float, Age]],
    existing: set[bytes],
) -> Decision:
    if file.kind == "l":
        return Decision(file, Action.SKIP, "symbolic link, not followed")
    if file.kind != "f":
        return Decision(file, Action.SKIP, "not a regular file")
    if file.links > 1:
        return Decision(file, Action.SKIP, f"has {file.links} hard links")
    age = now - file.mtime
    if age < rule.min_age.total_seconds():
        return Decision(
            file, Action.KEEP, f"modified {format_duration(max(age, 0))} ago", protected=True
        )
    if "delete" in bounds and file.mtime <= bounds["delete"][0]:
        return Decision(file, Action.DELETE, _past(age, bounds["delete"][1]))
    if "compress" in bounds and not file.compressed and file.mtime <= bounds["compress"][0]:
        target = file.path + codec_suffix(rule)
        if target in existing:
            return Decision(file, Action.SKIP, f"{display_path(target)} already exists")
        return Decision(file, Action.COMPRESS, _past(age, bounds["compress"][1]))
    return Decision(file, Action.KEEP, "")


def _past(age: float, limit: Age) -> str:
    return f"age {format_duration(age)}, older than {limit.words()}"


def apply_size_cap(rule: LogRule, decisions: Sequence[Decision]) -> list[Decision]:
    """Turn the oldest kept or compressed files into deletions until the rule's files fit.

    Sizes are those of DECISIONS' files: after a real compression, the caller passes the
    compressed copies. Files within min_age count toward the total but are never deleted.
    """
    if rule.max_total_size is None:
        return list(decisions)
    counted = [d for d in decisions if d.file.kind == "f" and d.action != Action.DELETE]
    total = sum(d.file.size for d in counted)
    doomed: set[bytes] = set()
    for decision in sorted(counted, key=lambda d: (d.file.mtime, d.file.path)):
        if total <= rule.max_total_size:
            break
        if decision.action in (Action.KEEP, Action.COMPRESS) and not decision.protected:
            doomed.add(decision.file.path)
            total -= decision.file.size
    cap = format_size(rule.max_total_size)
    return [
        replace(d, action=Action.DELETE, reason=f"size cap {cap}") if d.file.path in doomed else d
        for d in decisions
    ]


def rule_files(rule: LogRule, entries: Iterable[LogFile]) -> list[LogFile]:
    """The entries of a listing that belong to RULE. Raise ConfigError if it matches directories."""
    prefix = len(rule.base.encode("utf-8", "surrogateescape")) + 1
    directories = [e for e in entries if e.kind == "d" and matches(rule, e.path[prefix:])]
    if directories:
        shown = ", ".join(display_path(d.path) for d in directories[:3])
        raise ConfigError(
            f"glob {rule.path!r} expands to directories ({shown}"
            f"{', ...' if len(directories) > 3 else ''}); it must match files only"
        )
    return [e for e in entries if e.kind != "d" and owns(rule, e.path[prefix:])]
