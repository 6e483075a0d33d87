"""`maint logs.rotate` gives the same result as Debian's logrotate (issue 16 item 3).

The two runbook configurations run over 40 simulated days through real logrotate 3.21
(`logrotate -s STATE CONF`) and through the product (a local host, in this process), each on
its own copy of the same tree, with the same lines written to the live files in between. Each
configuration goes through the product twice: imported as it is (`logrotate: FILE`) and
written as an inventory rule in the contract keys. Day by day the trees must hold the same
file names, the same compressed files, the same lines in each file, the same modes and
owners, and the postrotate command must have run as often.

The runbooks' `create 0644 app app` and `create 644 analytics analytics` are kept as written:
the users `app` and `analytics` are created (system users, no home, no login shell) when this
machine lacks them, as the SSH harness creates its `fleet` user. The docker command of the
postrotate becomes a line appended to a counter file. An inventory rule runs its postrotate
once per rule (as `sharedscripts`), so it is compared with logrotate running the snippet plus
`sharedscripts`; the imported snippet, without it, with the snippet as it is (once per file).
The analytics configuration runs a third time with `copytruncate` in place of `create`.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from maintenance.logs.rotate_state import state_header, state_line
from tests.db_helpers import run_maint_text
from tests.inventories import write_inventory
from tests.logrotate_sim import (
    LOGROTATE,
    Contender,
    Snapshot,
    Tree,
    age_maint_state,
    logrotate_config,
    logrotate_contender,
    logrotate_would_rotate,
    maint_state_file,
    runbook_days,
    simulate,
    write_logrotate_state,
)

# The runbooks' snippets as they are (the import tests read the same files).
RUNBOOK_FILES = Path(__file__).parent / "fixtures" / "logrotate"
BIRTHDAY = (RUNBOOK_FILES / "birthday-scheduler").read_text()
ANALYTICS = (RUNBOOK_FILES / "analytics").read_text()


def _variant(snippet: str, line: str, replacement: str) -> str:
    """SNIPPET with its directive LINE replaced (which must be there)."""
    assert f"    {line}\n" in snippet, line
    return snippet.replace(f"    {line}\n", replacement)


@dataclass(frozen=True)
class Runbook:
    """A runbook configuration: its logrotate snippet, the same in contract keys, its files."""

    name: str
    snippet: str
    keys: dict[str, Any]
    live: tuple[str, ...]
    owner: str

    @property
    def keep(self) -> int:
        return int(self.keys["keep"])


_DAILY_GZ_DELAYED = {
    "rotate": "daily",
    "compress": "gz",
    "delay_compress": True,
    "missing_ok": True,
    "not_if_empty": True,
}
_ANALYTICS = Runbook(
    "analytics",
    ANALYTICS,
    {**_DAILY_GZ_DELAYED, "keep": 14, "create": "644 analytics analytics"},
    live=("events.log", "ingest.log"),
    owner="analytics",
)
RUNBOOKS = (
    Runbook(
        "birthday-scheduler",
        BIRTHDAY,
        {**_DAILY_GZ_DELAYED, "keep": 30, "create": "0644 app app"},
        live=("scheduler.log", "worker.log", "jobs.log"),
        owner="app",
    ),
    _ANALYTICS,
    # Not a runbook's own: the analytics configuration with `copytruncate` in place of
    # `create`, as for a program that cannot reopen its log (lines are written between runs
    # here, so none falls in the copy-to-truncate window).
    replace(
        _ANALYTICS,
        name="analytics-copytruncate",
        snippet=_variant(ANALYTICS, "create 644 analytics analytics", "    copytruncate\n"),
        keys={**_DAILY_GZ_DELAYED, "keep": 14, "copytruncate": True},
    ),
    # Nor this: the analytics configuration with logrotate's `maxage 5` (`delete_after: 5d`),
    # rotated copies going by age as well as by count.
    replace(
        _ANALYTICS,
        name="analytics-maxage",
        snippet=_variant(ANALYTICS, "rotate 14", "    rotate 14\n    maxage 5\n"),
        keys={**_ANALYTICS.keys, "delete_after": "5d"},
    ),
)
FORMS = ("imported", "inventory")
HOST = "ctl"
USERADD = (
    "useradd",
    "--system",
    "--user-group",
    "--no-create-home",
    "--shell",
    "/usr/sbin/nologin",
)
DAYS = 40


@dataclass
class Comparison:
    """One runbook in one form: logrotate's tree and the product's, day by day."""

    reference: Tree
    product: Tree
    keep: int
    reference_days: list[Snapshot]
    product_days: list[Snapshot]


@pytest.fixture(scope="module")
def runbook_users() -> None:
    """The owners the runbooks' `create` lines name, created if this machine lacks them."""
    for runbook in RUNBOOKS:
        try:
            pwd.getpwnam(runbook.owner)
        except KeyError:
            subprocess.run([*USERADD, runbook.owner], check=True)


@pytest.fixture(scope="module")
def comparisons(
    runbook_users: None, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], Comparison]:
    """Every configuration in both forms over 40 days: one logrotate run and one
    `maint logs.rotate` run per day (two on the day of two runs) cover all the trees."""
    top = tmp_path_factory.mktemp("rotate-vs-logrotate")
    top.chmod(0o755)
    pairs: dict[tuple[str, str], tuple[Tree, Tree]] = {}
    logrotate_blocks, rules = [], []
    for runbook in RUNBOOKS:
        for form in FORMS:
            label = f"{runbook.name}-{form}"
            days = runbook_days(runbook.live, DAYS)
            reference = Tree(top / "logrotate" / label, top / "logrotate" / f"{label}.runs", days)
            product = Tree(top / "maint" / label, top / "maint" / f"{label}.runs", days)
            pairs[(runbook.name, form)] = (reference, product)
            shared = form == "inventory"
            logrotate_blocks.append(
                logrotate_config(
                    runbook.snippet, reference.directory, reference.counter, shared=shared
                )
            )
            rules.append(_product_rule(runbook, form, product, top))
    for directory in (top / "logrotate", top / "maint"):
        directory.mkdir(mode=0o755)
    config = top / "logrotate.conf"
    config.write_text("".join(logrotate_blocks))
    logrotate = logrotate_contender(config, top / "logrotate.state")
    maint = _maint_contender(top, rules)

    trees = [tree for pair in pairs.values() for tree in pair]
    history = simulate(trees, [logrotate, maint])
    result = {}
    for index, (key, (reference, product)) in enumerate(pairs.items()):
        runbook = next(r for r in RUNBOOKS if r.name == key[0])
        result[key] = Comparison(
            reference,
            product,
            runbook.keep,
            [day[2 * index] for day in history],
            [day[2 * index + 1] for day in history],
        )
    return result


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("runbook", [r.name for r in RUNBOOKS])
def test_rotation_matches_logrotate_day_by_day(
    comparisons: dict[tuple[str, str], Comparison], runbook: str, form: str
) -> None:
    """Every day the product's tree holds what logrotate's holds: names, compression, lines,
    modes and owners, and the postrotate command has run as often."""
    comparison = comparisons[(runbook, form)]
    for day, (reference, product) in enumerate(
        zip(comparison.reference_days, comparison.product_days, strict=True)
    ):
        differences = product.differences(reference)
        assert not differences, f"day {day}:\n" + "\n".join(differences)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("runbook", [r.name for r in RUNBOOKS])
def test_no_line_is_lost_or_duplicated(
    comparisons: dict[tuple[str, str], Comparison], runbook: str, form: str
) -> None:
    """After 40 days every line written is in exactly one file, except the oldest, gone with
    the rotated files beyond the count, and those deleted by hand; logrotate's tree too."""
    comparison = comparisons[(runbook, form)]
    assert comparison.reference.lost_or_duplicated(comparison.keep) == []
    assert comparison.product.lost_or_duplicated(comparison.keep) == []


def _product_rule(runbook: Runbook, form: str, tree: Tree, top: Path) -> dict[str, Any]:
    """The runbook as the product gets it: its snippet imported from a file on the host, or
    the contract keys in the inventory; pointed at TREE, the postrotate counting in it."""
    if form == "imported":
        snippet = top / f"{runbook.name}.logrotate"
        snippet.write_text(
            logrotate_config(runbook.snippet, tree.directory, tree.counter, shared=False)
        )
        return {"logrotate": str(snippet)}
    rule = {"path": f"{tree.directory}/*.log", **runbook.keys}
    if "postrotate" in runbook.snippet:
        rule["postrotate"] = f"echo ran >> {tree.counter}"
    return rule


def _maint_contender(top: Path, rules: list[dict[str, Any]]) -> Contender:
    """`maint logs.rotate --json` on a local host with RULES, in this process."""
    state_dir = top / "maint-state"
    inventory = write_inventory(
        top / "inventory.yaml",
        {HOST: {"ansible_connection": "local", "logs": rules}},
        all_vars={"state_dir": str(state_dir)},
    )
    state = maint_state_file(state_dir, HOST)

    def rotate() -> None:
        run = run_maint_text("logs.rotate", inventory, "--json")
        assert run.returncode == 0, f"maint logs.rotate exited {run.returncode}:\n{run.stderr}"

    return Contender(age=lambda days: age_maint_state(state, days), rotate=rotate)


def _midnight(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class Decision(NamedTuple):
    """A question for both tools: DIRECTIVES, a live file of SIZE bytes, last rotated at
    LAST (a function of now, in local time); FORCE: `logrotate -f`, `maint --force`."""

    directives: str
    size: int
    last: Callable[[datetime], datetime]
    force: bool = False


def _today(now: datetime) -> datetime:
    return _midnight(now) + timedelta(seconds=1)


def _yesterday(now: datetime) -> datetime:
    return now - timedelta(days=1)


# Every case is asked of both tools today, so the weekday the suite runs on is the same for
# both, and each weekday checks its own share of the weekly rule.
DECISIONS: dict[str, Decision] = {
    "daily, earlier today": Decision("daily", 7, _today),
    "daily, a second before midnight": Decision(
        "daily", 7, lambda now: _midnight(now) - timedelta(seconds=1)
    ),
    "daily, 2 hours ahead": Decision("daily", 7, lambda now: now + timedelta(hours=2)),
    "daily, 30 hours ahead": Decision("daily", 7, lambda now: now + timedelta(hours=30)),
    "weekly, yesterday": Decision("weekly", 7, _yesterday),
    "weekly, 3 days ago": Decision("weekly", 7, lambda now: now - timedelta(days=3)),
    "weekly, 6 days ago": Decision("weekly", 7, lambda now: now - timedelta(days=6)),
    "weekly, 7 dates ago but later in the day": Decision(
        "weekly", 7, lambda now: now - timedelta(days=7) + timedelta(minutes=30)
    ),
    "weekly, 8 days ago": Decision("weekly", 7, lambda now: now - timedelta(days=8)),
    "monthly, last second of last month": Decision(
        "monthly", 7, lambda now: _midnight(now).replace(day=1) - timedelta(seconds=1)
    ),
    "monthly, first second of this month": Decision(
        "monthly", 7, lambda now: _midnight(now).replace(day=1) + timedelta(seconds=1)
    ),
    "size 100, 99 bytes": Decision("size 100", 99, _yesterday),
    "size 100, 100 bytes, rotated today": Decision("size 100", 100, _today),
    "daily maxsize 100, 101 bytes, rotated today": Decision("daily\n maxsize 100", 101, _today),
    "daily maxsize 100, 100 bytes, rotated today": Decision("daily\n maxsize 100", 100, _today),
    "daily minsize 100, 99 bytes": Decision("daily\n minsize 100", 99, _yesterday),
    "daily minsize 100, 100 bytes": Decision("daily\n minsize 100", 100, _yesterday),
    "weekly minsize 100, 99 bytes, 8 days ago": Decision(
        "weekly\n minsize 100", 99, lambda now: now - timedelta(days=8)
    ),
    "daily notifempty, empty": Decision("daily\n notifempty", 0, _yesterday),
    "daily ifempty, empty": Decision("daily\n ifempty", 0, _yesterday),
    "forced, rotated today": Decision("daily", 7, _today, force=True),
    "forced, empty, notifempty": Decision("daily\n notifempty", 0, _yesterday, force=True),
    "forced, size 100, 99 bytes": Decision("size 100", 99, _today, force=True),
}


@pytest.mark.parametrize("case", DECISIONS)
def test_rotation_decision_matches_logrotate(case: str, tmp_path: Path) -> None:
    """Given the same file and last rotation, the product rotates now exactly when
    logrotate would (cadence by calendar dates, size, minsize, maxsize, empty files)."""
    directives, size, last_rotated, force = DECISIONS[case]
    tmp_path.chmod(0o755)
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    live = logs / "app.log"
    live.write_bytes(b"x" * (size - 1) + b"\n" if size else b"")
    when = last_rotated(datetime.now())

    config = tmp_path / "logrotate.conf"
    config.write_text(f"{logs}/*.log {{\n {directives}\n rotate 5\n}}\n")
    state = tmp_path / "logrotate.state"
    write_logrotate_state(state, {live: when})
    expected = logrotate_would_rotate(config, state, force=force)

    state_dir = tmp_path / "maint-state"
    state_dir.mkdir()
    maint_state_file(state_dir, HOST).write_bytes(
        b"\n".join([state_header(), state_line(bytes(live), when.timestamp())]) + b"\n"
    )
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {HOST: {"ansible_connection": "local", "logs": [{"logrotate": str(config)}]}},
        all_vars={"state_dir": str(state_dir)},
    )
    flags = ["--force"] if force else []
    run = run_maint_text("logs.rotate", inventory, "--dry-run", "--json", *flags)
    assert run.returncode == 0, run.stderr
    rotates = json.loads(run.stdout)["results"][0]["details"]["rotated"] == 1
    verb = {True: "rotates", False: "waits"}
    assert rotates == expected, (
        f"{size} bytes, last rotated {when:%a %Y-%m-%d %H:%M:%S}, now"
        f" {datetime.now():%a %Y-%m-%d %H:%M}: logrotate {verb[expected]}, maint {verb[rotates]}"
    )


COPYTRUNCATE = """\
/var/log/analytics/*.log {
    daily
    rotate 5
    copytruncate
    missingok
    notifempty
}
"""
# The application, as its own process: appends numbered lines (O_APPEND, one write each)
# until the stop file appears, then prints the last number written.
WRITER = """
import os, sys, time
path, stop, number = sys.argv[1], sys.argv[2], int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
while not os.path.exists(stop):
    number += 1
    os.write(fd, b"app.log %d\\n" % number)
    time.sleep(0.0002)
print(number)
"""


@pytest.mark.parametrize("tool", ["logrotate", "maint"])
def test_copytruncate_loses_only_lines_written_between_copy_and_truncate(
    tool: str, tmp_path: Path
) -> None:
    """With the application writing throughout a forced copytruncate rotation, the copy holds
    every line up to some point, the live file every line from a later point on, and only
    the lines in between are lost: logrotate's documented window, for logrotate and maint."""
    tmp_path.chmod(0o755)
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    live = logs / "app.log"
    live.write_text("".join(f"app.log {number}\n" for number in range(1, 1001)))
    config = tmp_path / "copytruncate.conf"
    config.write_text(logrotate_config(COPYTRUNCATE, logs, tmp_path / "runs", shared=False))
    if tool == "logrotate":
        argv = [LOGROTATE, "-f", "-s", str(tmp_path / "logrotate.state"), str(config)]

        def rotate() -> None:
            subprocess.run(argv, check=True, capture_output=True)
    else:
        inventory = write_inventory(
            tmp_path / "inventory.yaml",
            {HOST: {"ansible_connection": "local", "logs": [{"logrotate": str(config)}]}},
            all_vars={"state_dir": str(tmp_path / "maint-state")},
        )

        def rotate() -> None:
            run = run_maint_text("logs.rotate", inventory, "--force", "--json")
            assert run.returncode == 0, run.stderr

    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(live), str(stop), "1000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        while live.stat().st_size < 30_000:  # the application is writing
            time.sleep(0.01)
        rotate()
        time.sleep(0.1)  # and goes on writing to the truncated file
    finally:
        stop.touch()
        last = int(writer.communicate(timeout=10)[0])

    copied = _numbers(logs / "app.log.1")
    kept = _numbers(live)
    assert copied == list(range(1, len(copied) + 1)), "the copy is not the file's beginning"
    assert kept and kept == list(range(kept[0], last + 1)), "the live file misses later lines"
    assert len(copied) > 1000 and kept[0] > copied[-1]
    lost = kept[0] - copied[-1] - 1
    print(f"{tool}: copied {len(copied)} lines, lost {lost} in the window, kept {len(kept)}")


def _numbers(path: Path) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in path.read_text().splitlines()]
