"""What logs.rotate does on a host: pure decisions from one listing, the state and the clock.

Per live file: whether it is due (cadence or size against the state, as logrotate decides,
`--force` aside), then the steps of its rotation in a safe order: drop what falls beyond
`keep` or `delete_after`, shift the numbered names up from the highest, rename (or copy and
truncate) the live file, create the new one. A rule's postrotate runs after its files rotated,
and the fresh `.1` is compressed only after that, once the program writes to its new file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cached_property

from ..settings.logs import CreateSpec
from ..units import format_size
from .journal import TEMPORARY
from .plan import LogFile, display_path
from .rotation import RotateRule, rotated_stem
from .rules import COMPRESSED_SUFFIXES, pattern_regex

_ROTATED_SUFFIXES = (b"", b".gz", b".zst")
# logrotate rotates at once only past 25 hours in the future (a clock set back a little,
# or a time zone change, otherwise compares dates); `weekly` rotates on Sundays (weekday 0).
_FUTURE = 25 * 3600
_WEEK_STARTS = 0


@dataclass(frozen=True)
class Step:
    """One change on the host. UNIT is the live file's rotation it belongs to (0: none)."""

    kind: str  # prepare, delete, rename, copy, truncate, create, compress, postrotate
    path: bytes
    target: bytes = b""
    unit: int = 0
    create: CreateSpec | None = None
    codec: str = ""
    command: str = ""

    def words(self) -> str:
        """The step for people: 'rename /l/app.log -> /l/app.log.1'."""
        subject = display_path(self.path)
        if self.kind in ("rename", "copy", "compress"):
            return f"{self.kind} {subject} -> {display_path(self.target)}"
        if self.kind in ("create", "prepare"):
            said = f"({self.create.words()})" if self.create else ""
            return f"{self.kind} {subject} {said}".strip()
        if self.kind == "postrotate":
            return f"postrotate ({subject})"
        return f"{self.kind} {subject}"


@dataclass
class FilePlan:
    """One live file of a rule: rotated or not, and why."""

    rule: int
    file: LogFile
    rotate: bool
    reason: str
    unit: int = 0
    steps: list[Step] = field(default_factory=list)  # before the postrotate
    late: list[Step] = field(default_factory=list)  # after it: compressing the fresh .1


@dataclass
class RulePlan:
    rule: RotateRule
    files: list[FilePlan] = field(default_factory=list)
    postrotate: list[Step] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rotating(self) -> list[FilePlan]:
        return [f for f in self.files if f.rotate]


@dataclass(frozen=True)
class Clock:
    """The host's clock: epoch seconds and its UTC offset, for calendar days as it has them."""

    now: float
    offset_s: int = 0

    def local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, timezone(timedelta(seconds=self.offset_s)))

    def hour_start(self) -> float:
        """The start of the current hour: when a newly seen file is recorded (as logrotate)."""
        return self.local(self.now).replace(minute=0, second=0, microsecond=0).timestamp()


@dataclass(frozen=True)
class Listing:
    """What one round trip read on the host: entries per base (None: no such directory)."""

    clock: Clock
    bases: dict[str, list[LogFile] | None]
    state: dict[bytes, float]
    journal: bool = False
    zstd: bool = True
    state_text: bytes = b""  # the state file as read, which the journal checks is unchanged

    @cached_property
    def directories(self) -> dict[bytes, dict[bytes, LogFile]]:
        """Every listed entry by directory and name, made once for all the live files."""
        index: dict[bytes, dict[bytes, LogFile]] = {}
        for entries in self.bases.values():
            for entry in entries or ():
                head, _, name = entry.path.rpartition(b"/")
                index.setdefault(head, {})[name] = entry
        return index

    @cached_property
    def copies(self) -> dict[bytes, list[bytes]]:
        """The names of rotated copies (app.log.1, app.log-20261203.gz) by live path."""
        found: dict[bytes, list[bytes]] = {}
        for directory, entries in self.directories.items():
            for name in entries:
                stem = rotated_stem(name)
                if stem is not None:
                    found.setdefault(directory + b"/" + stem, []).append(name)
        return found


def plan_rules(
    rules: Sequence[RotateRule], listing: Listing, force: bool
) -> tuple[list[RulePlan], dict[bytes, float]]:
    """Every rule's plan and the state the host has once they are carried out."""
    plans, claimed = [], set[bytes]()
    state = dict(listing.state)
    unit = 0
    for index, rule in enumerate(rules):
        plan = RulePlan(rule)
        plans.append(plan)
        if rule.compress == "zstd" and not listing.zstd:
            plan.error = "the rule compresses with zstd, but zstd is not installed on the host"
            continue
        lives, error = _live_files(rule, listing)
        if error:
            plan.error = error
            continue
        for live in lives:
            if live.path in claimed:
                plan.problems.append(f"{display_path(live.path)}: already rotated by a rule above")
                continue
            claimed.add(live.path)
            unit += 1
            file_plan = _plan_file(index, rule, live, listing, force, unit)
            plan.files.append(file_plan)
            if file_plan.rotate:
                state[live.path] = listing.clock.now
            elif live.path not in state:
                state[live.path] = listing.clock.hour_start()
        plan.postrotate = _postrotate(rule, plan.rotating)
    return plans, state


def _live_files(rule: RotateRule, listing: Listing) -> tuple[list[LogFile], str | None]:
    """The rule's live files: glob matches that are not rotated copies or our own temporaries."""
    found: list[LogFile] = []
    for glob in rule.globs:
        entries = listing.bases.get(glob.base)
        if entries is None:
            continue
        prefix = len(glob.base.encode("utf-8", "surrogateescape")) + 1
        names = {entry.path for entry in entries}
        regex = pattern_regex(glob.pattern)
        for entry in entries:
            relative = entry.path[prefix:]
            if regex.fullmatch(relative.decode("utf-8", "surrogateescape")) and _is_live(
                entry.path, names
            ):
                found.append(entry)
    if not found and not rule.missing_ok:
        return [], f"no file matches {rule.label} (set missing_ok to allow it)"
    directories = [f for f in found if f.kind == "d"]
    if directories:
        return [], f"{rule.label} matches the directory {display_path(directories[0].path)}"
    unique = {f.path: f for f in found}  # two globs of one rule may name one file
    return sorted(unique.values(), key=lambda f: f.path), None


def _is_live(path: bytes, names: set[bytes]) -> bool:
    if path.endswith(COMPRESSED_SUFFIXES) or path.endswith(TEMPORARY):  # or our copy in the making
        return False
    directory, _, name = path.rpartition(b"/")
    stem = rotated_stem(name)
    return stem is None or directory + b"/" + stem not in names


def _plan_file(
    index: int, rule: RotateRule, live: LogFile, listing: Listing, force: bool, unit: int
) -> FilePlan:
    if live.kind != "f":
        kind = "a symbolic link, never followed" if live.kind == "l" else "not a regular file"
        return FilePlan(index, live, False, kind)
    if live.links > 1:
        return FilePlan(index, live, False, f"has {live.links} hard links")
    due, reason = is_due(rule, live, listing.state.get(live.path), listing.clock, force)
    if not due:
        return FilePlan(index, live, False, reason)
    try:
        if rule.date_ext:
            steps, late = _dated_steps(rule, live, listing, unit)
        else:
            steps, late = _numbered_steps(rule, live, listing, unit)
    except _Blocked as exc:
        return FilePlan(index, live, False, str(exc))
    steps = _prepared(steps, rule, live.path, unit)
    return FilePlan(index, live, True, reason, unit, steps, late)


def is_due(
    rule: RotateRule, live: LogFile, last: float | None, clock: Clock, force: bool
) -> tuple[bool, str]:
    """Whether LIVE rotates now, and why; logrotate 3.21's order of tests, notifempty last."""
    size = live.size
    if force:
        due, reason = True, "forced"
    elif rule.size is not None:
        due = size >= rule.size
        said = "reached" if due else "below"
        reason = f"size {format_size(size)} {said} {format_size(rule.size)}"
    elif last is None:
        due, reason = False, "first seen: recorded, rotates from the next period"
    else:
        due, reason = _cadence_due(rule, last, clock)
        if due and rule.minsize is not None and size < rule.minsize:
            due, reason = False, f"size {format_size(size)} below minsize"
    if not due and rule.maxsize is not None and size > rule.maxsize:
        due, reason = True, f"size {format_size(size)} above maxsize"
    if due and rule.not_if_empty and size == 0:
        due, reason = False, "empty (not_if_empty)"
    return due, reason


def _cadence_due(rule: RotateRule, last: float, clock: Clock) -> tuple[bool, str]:
    """logrotate 3.21's findNeedRotating: calendar dates on the host's clock."""
    if last - clock.now > _FUTURE:
        return True, "last rotated in the future"
    now, then = clock.local(clock.now).date(), clock.local(last).date()
    if rule.cadence == "weekly":
        days = (now - then).days
        due = days >= 7 or (days >= 1 and now.isoweekday() % 7 == _WEEK_STARTS)
        return due, "a new week" if due else "rotated this week"
    if rule.cadence == "monthly":
        due = (now.year, now.month) != (then.year, then.month)
        return due, "a new month" if due else "rotated this month"
    due = now != then
    return due, "a new day" if due else "rotated today"


class _Blocked(Exception):
    """A rotation that would overwrite or follow something it must not; the file waits."""


def _regular(siblings: dict[bytes, LogFile], name: bytes) -> bool:
    entry = siblings.get(name)
    if entry is None:
        return False
    if entry.kind != "f" or entry.links > 1:
        raise _Blocked(f"{display_path(entry.path)} is not a single-link regular file")
    return True


def _hand_back(rule: RotateRule, live: bytes, first: bytes, unit: int) -> list[Step]:
    """Move the live file to FIRST and give the program a file to write to."""
    if rule.copytruncate:
        return [Step("copy", live, first, unit), Step("truncate", live, unit=unit)]
    if rule.create is None:
        return [Step("rename", live, first, unit)]
    return [Step("rename", live, first, unit), Step("create", live, first, unit, rule.create)]


def _prepared(steps: list[Step], rule: RotateRule, live: bytes, unit: int) -> list[Step]:
    """STEPS, led by making the new live file aside when the rule creates one: an owner the
    host does not know fails the rotation before anything was renamed."""
    if rule.create is None or rule.copytruncate:
        return steps
    return [Step("prepare", live, live, unit, rule.create), *steps]


def _expired(rule: RotateRule, entry: LogFile, clock: Clock) -> bool:
    if rule.max_age is None:
        return False
    return entry.mtime <= rule.max_age.before(datetime.fromtimestamp(clock.now, UTC)).timestamp()


def _family(
    live: LogFile, listing: Listing
) -> tuple[bytes, bytes, dict[bytes, LogFile], list[bytes]]:
    """LIVE's directory (ending in '/'), its name, its directory's entries by name and the
    names of its rotated copies."""
    directory, _, name = live.path.rpartition(b"/")
    siblings, copies = listing.directories.get(directory, {}), listing.copies.get(live.path, [])
    return directory + b"/", name, siblings, copies


def _new_copy(
    rule: RotateRule, live: LogFile, first: bytes, unit: int
) -> tuple[list[Step], list[Step]]:
    """The live file handed over to its newest copy FIRST, and that copy's fate: deleted at
    once with keep 0, else compressed after the postrotate (late) unless delay_compress."""
    steps = _hand_back(rule, live.path, first, unit)
    if rule.keep == 0:
        return [*steps, Step("delete", first, unit=unit)], []
    if rule.compress and not rule.delay_compress:
        return steps, [Step("compress", first, first + rule.suffix, unit, codec=rule.compress)]
    return steps, []


def _numbered_steps(
    rule: RotateRule, live: LogFile, listing: Listing, unit: int
) -> tuple[list[Step], list[Step]]:
    path, name, siblings, copies = _family(live, listing)
    clock = listing.clock
    numbered: dict[int, list[tuple[bytes, bytes]]] = {}  # number: [(name, suffix)]
    for sibling in copies:
        if sibling.startswith(name + b"."):
            digits, _, rest = sibling[len(name) + 1 :].partition(b".")
            suffix = b"." + rest if rest else b""
            if digits.isdigit() and suffix in _ROTATED_SUFFIXES and _regular(siblings, sibling):
                numbered.setdefault(int(digits), []).append((sibling, suffix))
    steps: list[Step] = []
    plain_first = name + b".1"
    keep = rule.keep
    if (
        rule.compress
        and rule.delay_compress
        and (plain_first, b"") in numbered.get(1, [])
        # A .1 due for deletion is deleted plain: logrotate compresses it, then removes it.
        and not (keep <= 1 or _expired(rule, siblings[plain_first], clock))
    ):
        if plain_first + rule.suffix in siblings:
            raise _Blocked(f"{display_path(path + plain_first + rule.suffix)} already exists")
        steps.append(
            Step("compress", path + plain_first, path + plain_first + rule.suffix, unit,
                 codec=rule.compress)
        )  # fmt: skip
        numbered[1] = [
            (plain_first + rule.suffix, rule.suffix) if old == plain_first else (old, suffix)
            for old, suffix in numbered[1]
        ]
    for number in sorted(numbered, reverse=True):
        for old, suffix in sorted(numbered[number]):
            entry = siblings.get(old)
            if number >= keep or (entry is not None and _expired(rule, entry, clock)):
                steps.append(Step("delete", path + old, unit=unit))
            else:
                new = name + b"." + str(number + 1).encode() + suffix
                steps.append(Step("rename", path + old, path + new, unit))
    handed, late = _new_copy(rule, live, path + name + b".1", unit)
    return steps + handed, late


def _dated_steps(
    rule: RotateRule, live: LogFile, listing: Listing, unit: int
) -> tuple[list[Step], list[Step]]:
    path, name, siblings, copies = _family(live, listing)
    clock = listing.clock
    stamp = clock.local(clock.now).strftime("-%Y%m%d").encode()
    target = name + stamp
    if any(target + suffix in siblings for suffix in _ROTATED_SUFFIXES):
        raise _Blocked(f"{display_path(path + target)} exists: already rotated today")
    dated = sorted(
        sibling
        for sibling in copies
        if sibling.startswith(name + b"-")
        and sibling[len(name) + 9 :] in _ROTATED_SUFFIXES and _regular(siblings, sibling)
    )  # fmt: skip
    steps: list[Step] = []
    survivors = max(rule.keep - 1, 0)
    doomed = dated[: max(len(dated) - survivors, 0)] if rule.keep else dated
    for old in dated:
        entry = siblings[old]
        if old in doomed or _expired(rule, entry, clock):
            steps.append(Step("delete", path + old, unit=unit))
        elif rule.compress and rule.delay_compress and not old.endswith((b".gz", b".zst")):
            if old + rule.suffix in siblings:
                raise _Blocked(f"{display_path(path + old + rule.suffix)} already exists")
            steps.append(
                Step("compress", path + old, path + old + rule.suffix, unit, codec=rule.compress)
            )
    handed, late = _new_copy(rule, live, path + target, unit)
    return steps + handed, late


def _postrotate(rule: RotateRule, rotating: list[FilePlan]) -> list[Step]:
    """logrotate's postrotate: once for the rule (sharedscripts), else once per rotated file."""
    if rule.postrotate is None or not rotating:
        return []
    if rule.shared_scripts:
        return [Step("postrotate", rule.label.encode(), command=rule.postrotate)]
    return [Step("postrotate", f.file.path, command=rule.postrotate, unit=f.unit) for f in rotating]
