"""Simulated days of log rotation, for comparing `maint logs.rotate` with Debian's logrotate.

A scenario is a list of days. On each day the same "application" writes numbered lines to
the live files of every tree (or leaves a file empty, or removes it), then each tool rotates
its own tree. Days pass by moving each tool's memory of its last rotations one day back (its
state file) and every file's mtime with it, so a 40-day history runs in seconds on today's
clock. After each day the tree is recorded as a user would inspect it: the names, which are
compressed, the line numbers each file holds (decompressed), mode and owner, and how many
times the postrotate command ran.

logrotate 3.21 decides `daily` from its state file alone: it rotates when the calendar date
(local time) of the file's "last rotated" entry differs from today's
(findNeedRotating in logrotate.c), whatever the file's mtime. A file it has never seen gets
an entry of "now", truncated to the hour, and is not rotated on that first run.
"""

from __future__ import annotations

import datetime
import functools
import grp
import gzip
import os
import pwd
import stat
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maintenance.logs.rotate_state import parse_state, state_files, state_header, state_line

DAY_S = 86400
LOGROTATE = "/usr/sbin/logrotate"
LOGROTATE_STATE_HEADER = "logrotate state -- version 2"
GZIP_MAGIC = b"\x1f\x8b"
APP_MODE = 0o640  # the mode the "application" creates its log with, unlike `create`'s 0644
# The application's lines are dated this long before the day's rotation. An age limit (maxage)
# then falls between two runs, never within the second between the writes and the runs,
# where the tools' clocks (whole seconds, read at different moments) would decide it.
WRITTEN_BEFORE_RUN_S = 6 * 3600


@dataclass(frozen=True)
class Day:
    """What the application does before the day's rotation.

    LINES: lines written to each live file (a file not named gets none and, if it exists,
    stays as it is); REMOVED: files deleted before the run (a live file: the application is
    gone, `missingok`; a rotated one: an operator freed space); SECOND_RUN: lines written
    before a second rotation the same day (which must rotate nothing under `daily`), or None
    for one run; GAP: days since the previous run (more than one: the host was down).
    """

    lines: dict[str, int]
    removed: tuple[str, ...] = ()
    second_run: dict[str, int] | None = None
    gap: int = 1


def runbook_days(names: Sequence[str], count: int = 40) -> list[Day]:
    """COUNT days over live files NAMES (the first is the busy one, the second an occasional
    one, a third if given appears on day 15).

    The days that matter: day 0 (files seen for the first time), day 5 (nothing written to
    the busy file: it is empty after day 4's rotation, `notifempty`), days 10 to 12 (the
    second file is removed, `missingok`; it comes back on day 13, created by the application
    with its own mode), day 15 (a new file appears), day 20 (two runs in one day), day 25
    (the busy file's fourth rotated copy was deleted by hand: a gap in the numbers), day 30
    (the first run after three days down).
    """
    busy, *others = names
    occasional = others[0] if others else None
    late = others[1] if len(others) > 1 else None
    days = []
    for number in range(count):
        lines = {busy: 3 + number % 4}
        if number == 5:
            lines = {}
        if occasional and not 10 <= number <= 12 and number % 3 != 1:
            lines[occasional] = 2
        if late and number >= 15:
            lines[late] = 1 + number % 2
        removed: tuple[str, ...] = ()
        if occasional and number == 10:
            removed = (occasional,)
        if number == 25:
            removed = (f"{busy}.4.gz",)
        second = {busy: 2} if number == 20 else None
        days.append(Day(lines, removed, second, gap=3 if number == 30 else 1))
    return days


@dataclass(frozen=True)
class FileRecord:
    """One file of a tree as a user sees it: compressed or not, its lines, mode and owner."""

    compressed: bool
    lines: tuple[int, ...]  # line numbers in file order: a duplicate or a loss shows
    mode: int
    owner: str
    group: str
    link: str = ""  # the target, for a symbolic link

    def describe(self) -> str:
        if self.link:
            return f"a symbolic link to {self.link}"
        kind = "gzip" if self.compressed else "plain"
        numbers = _ranges(self.lines)
        return f"{kind} {oct(self.mode)} {self.owner}:{self.group} lines {numbers}"


@dataclass(frozen=True)
class Snapshot:
    """A tree after one day's rotation: FILES by name, and the postrotate runs so far."""

    files: dict[str, FileRecord]
    postrotate_runs: int

    def differences(self, other: Snapshot) -> list[str]:
        """What differs from OTHER (the reference), one line per file, empty if nothing."""
        problems = []
        for name in sorted(self.files.keys() | other.files.keys()):
            mine, theirs = self.files.get(name), other.files.get(name)
            if mine != theirs:
                expected = theirs.describe() if theirs else "absent"
                got = mine.describe() if mine else "absent"
                problems.append(f"{name}: expected {expected}; got {got}")
        if self.postrotate_runs != other.postrotate_runs:
            problems.append(
                f"postrotate runs: expected {other.postrotate_runs}; got {self.postrotate_runs}"
            )
        return problems


@dataclass
class Tree:
    """A log directory, the days of the application writing to it, and a postrotate counter."""

    directory: Path
    counter: Path
    days: Sequence[Day]
    written: dict[str, int] = field(default_factory=dict)  # last line number per live file
    discarded: set[tuple[str, int]] = field(default_factory=set)  # (live file, line) deleted

    def create(self) -> None:
        self.directory.mkdir(parents=True)
        # logrotate refuses a directory writable by a group other than root, or by others.
        self.directory.chmod(0o755)
        # Left alone by both tools: a name no rule matches, a hidden file `*` does not match,
        # and a symbolic link matching the rule (logrotate never rotates one; nor does maint).
        (self.directory / "notes.txt").write_text("not a log: no rule matches it\n")
        (self.directory / ".hidden.log").write_text("hidden 1\n")
        (self.directory / "linked.log").symlink_to("notes.txt")
        self.counter.touch()

    def write(self, name: str, count: int) -> None:
        """Append COUNT numbered lines to live file NAME, creating it as the application does."""
        path = self.directory / name
        first = self.written.get(name, 0) + 1
        created = not path.exists()
        with open(path, "a") as handle:
            handle.writelines(f"{name} {number}\n" for number in range(first, first + count))
        if created:
            path.chmod(APP_MODE)
        written = time.time() - WRITTEN_BEFORE_RUN_S
        os.utime(path, (written, written))
        self.written[name] = first + count - 1

    def remove(self, name: str) -> None:
        """Delete file NAME, remembering its lines as deliberately gone."""
        path = self.directory / name
        if path.exists():
            live = _live_name(name, self.written)
            self.discarded |= {(live, number) for number in _line_numbers(path.read_bytes())}
            path.unlink()

    def age(self, seconds: int = DAY_S) -> None:
        """Move every file's mtime (and atime) SECONDS back: time passes for the files."""
        for entry in os.scandir(self.directory):
            info = entry.stat(follow_symlinks=False)
            os.utime(
                entry.path,
                ns=(info.st_atime_ns - seconds * 10**9, info.st_mtime_ns - seconds * 10**9),
                follow_symlinks=False,
            )

    def snapshot(self) -> Snapshot:
        files = {}
        for entry in os.scandir(self.directory):
            if entry.name == "notes.txt":
                continue
            info = entry.stat(follow_symlinks=False)
            if entry.is_symlink():
                files[entry.name] = FileRecord(False, (), 0, "", "", os.readlink(entry.path))
                continue
            data = Path(entry.path).read_bytes()
            files[entry.name] = FileRecord(
                compressed=data[:2] == GZIP_MAGIC,
                lines=tuple(_line_numbers(data)),
                mode=stat.S_IMODE(info.st_mode),
                owner=_user(info.st_uid),
                group=_group(info.st_gid),
            )
        runs = len(self.counter.read_text().splitlines())
        return Snapshot(files, runs)

    def lost_or_duplicated(self, keep: int) -> list[str]:
        """Lines of each live file missing or held twice across the tree.

        Every line written must be in exactly one file, except the oldest ones, which leave
        with the file that rotates past KEEP, and those of files deleted by hand: so per live
        file, from the oldest line held to the last written, each line is held once or was
        deleted by hand.
        """
        held: dict[str, list[int]] = {}
        for name, record in self.snapshot().files.items():
            held.setdefault(_live_name(name, self.written), []).extend(record.lines)
        problems = []
        for live, last in sorted(self.written.items()):
            numbers = sorted(held.get(live, []))
            if not numbers:
                problems.append(f"{live}: every line lost")
                continue
            duplicated = sorted(n for n, times in Counter(numbers).items() if times > 1)
            if duplicated:
                problems.append(f"{live}: lines {_ranges(tuple(duplicated))} held twice")
            deleted = {number for name, number in self.discarded if name == live}
            missing = sorted(set(range(numbers[0], last + 1)) - set(numbers) - deleted)
            if missing:
                problems.append(f"{live}: lines {_ranges(tuple(missing))} lost")
            if len(_files_of(live, self.directory)) > keep:
                problems.append(f"{live}: more than {keep} rotated files kept")
        return problems


@dataclass
class Contender:
    """A tool under comparison: how it ages its state by some days and how it rotates."""

    age: Callable[[int], None]
    rotate: Callable[[], None]


def simulate(trees: Sequence[Tree], contenders: Sequence[Contender]) -> list[list[Snapshot]]:
    """Run every tree's days; per day, the snapshot of each tree (in TREES' order).

    Each tree gets its own application writes; each contender rotates whichever trees it was
    given, once a day, or twice on a day where any tree has a second run. The trees are
    recorded after every day.
    """
    for tree in trees:
        tree.create()
    history = []
    for number in range(len(trees[0].days)):
        if number:
            gap = trees[0].days[number].gap
            for contender in contenders:
                contender.age(gap)
            for tree in trees:
                tree.age(gap * DAY_S)
        for tree in trees:
            day = tree.days[number]
            for name in day.removed:
                tree.remove(name)
            for name, count in day.lines.items():
                tree.write(name, count)
        for contender in contenders:
            contender.rotate()
        second = [tree for tree in trees if tree.days[number].second_run is not None]
        if second:
            for tree in second:
                for name, count in (tree.days[number].second_run or {}).items():
                    tree.write(name, count)
            for contender in contenders:
                contender.rotate()
        history.append([tree.snapshot() for tree in trees])
    return history


def logrotate_contender(config: Path, state: Path) -> Contender:
    """Debian's logrotate with CONFIG and its own STATE file."""

    def rotate() -> None:
        done = subprocess.run(
            [LOGROTATE, "-s", str(state), str(config)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise AssertionError(f"logrotate failed ({done.returncode}): {done.stderr}")

    return Contender(age=lambda days: age_logrotate_state(state, days), rotate=rotate)


def age_logrotate_state(state: Path, days: int = 1) -> None:
    """Move every "last rotated" date of logrotate's STATE file DAYS back.

    The file is `logrotate state -- version 2` then one `"PATH" Y-M-D-h:m:s` line per file,
    in local time without zero padding.
    """
    if not state.exists():
        return
    header, *entries = state.read_text().splitlines()
    aged = [header]
    for entry in entries:
        path, _, stamp = entry.rpartition(" ")
        when = datetime.datetime.strptime(stamp, "%Y-%m-%d-%H:%M:%S")
        aged.append(f"{path} {_stamp(when - datetime.timedelta(days=days))}")
    state.write_text("\n".join(aged) + "\n")


def write_logrotate_state(state: Path, rotated: dict[Path, datetime.datetime]) -> None:
    """A logrotate STATE file saying each path last rotated at the given local time."""
    lines = [
        LOGROTATE_STATE_HEADER,
        *(f'"{path}" {_stamp(when)}' for path, when in rotated.items()),
    ]
    state.write_text("\n".join(lines) + "\n")


def logrotate_would_rotate(config: Path, state: Path, *, force: bool = False) -> bool:
    """Whether logrotate, in debug mode (which changes nothing), says a log needs rotating;
    FORCE as `logrotate -f`."""
    argv = [LOGROTATE, "-d", *(["-f"] if force else []), "-s", str(state), str(config)]
    done = subprocess.run(argv, capture_output=True, text=True)
    said = done.stdout + done.stderr
    if "considering log" not in said:
        raise AssertionError(f"logrotate considered no log: {said}")
    return "log needs rotating" in said


def _stamp(when: datetime.datetime) -> str:
    """logrotate's state time: local, Y-M-D-h:m:s without zero padding."""
    return f"{when.year}-{when.month}-{when.day}-{when.hour}:{when.minute}:{when.second}"


def maint_state_file(state_dir: Path, host: str) -> Path:
    """Where `maint logs.rotate` keeps HOST's state when the `state_dir` var is STATE_DIR."""
    return state_dir / state_files(host).state


def age_maint_state(state: Path, days: int = 1) -> None:
    """Move every "last rotated" time of the product's STATE file DAYS back (its format is
    described in maintenance/logs/rotate_state.py)."""
    if not state.exists():
        return
    entries = parse_state(state.read_bytes())
    lines = [state_line(path, epoch - days * DAY_S) for path, epoch in entries.items()]
    state.write_bytes(b"\n".join([state_header(), *lines]) + b"\n")


def logrotate_config(snippet: str, directory: Path, counter: Path, *, shared: bool) -> str:
    """A runbook SNIPPET pointed at DIRECTORY, its postrotate counting runs in COUNTER.

    The snippet's path keeps its file pattern; its postrotate body (a docker command) becomes
    a line appended to COUNTER. SHARED adds `sharedscripts`, the behaviour of a rule written
    in the inventory.
    """
    header, _, body = snippet.partition("{")
    pattern = header.strip().rsplit("/", 1)[1]
    lines = body.lstrip("\n").rstrip().removesuffix("}").splitlines()
    out = [f"{directory}/{pattern} {{"]
    in_script = False
    for line in lines:
        word = line.strip()
        if word == "postrotate":
            in_script = True
            out.append(line)
            out.append(f"        echo ran >> {counter}")
        elif word == "endscript":
            in_script = False
            out.append(line)
        elif not in_script:
            out.append(line)
    if shared:
        out.append("    sharedscripts")
    out.append("}")
    return "\n".join(out) + "\n"


def _line_numbers(data: bytes) -> list[int]:
    """The line numbers in a file's DATA, decompressed if it is gzip."""
    if data[:2] == GZIP_MAGIC:
        data = gzip.decompress(data)
    return [int(line.rsplit(b" ", 1)[1]) for line in data.splitlines() if line]


@functools.cache
def _user(uid: int) -> str:
    return pwd.getpwuid(uid).pw_name


@functools.cache
def _group(gid: int) -> str:
    return grp.getgrgid(gid).gr_name


def _live_name(name: str, live: dict[str, int]) -> str:
    """The live file a rotated NAME comes from (app.log.3.gz -> app.log)."""
    for candidate in sorted(live, key=len, reverse=True):
        if name == candidate or name.startswith(candidate + "."):
            return candidate
    return name


def _files_of(live: str, directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(live + ".")]


def _ranges(numbers: tuple[int, ...]) -> str:
    """1,2,3,5 -> '1-3,5' (order kept, so a line out of place shows)."""
    parts: list[str] = []
    start = previous = None
    for number in numbers:
        if previous is not None and number == previous + 1:
            previous = number
            continue
        if start is not None:
            parts.append(f"{start}-{previous}" if start != previous else str(start))
        start = previous = number
    if start is not None:
        parts.append(f"{start}-{previous}" if start != previous else str(start))
    return ",".join(parts) or "none"
