"""Where logs.rotate keeps its state on each host, and the format of the state file.

Location: the directory named by the `state_dir` var (in all.vars, the scheduler's too) when
it is set, else `${MAINT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/maint}` as the host's
shell expands it for the connecting user. It lies outside every log directory, so no rule's
glob matches it and logs.clean never deletes it. Four files per inventory host live there,
named after it (HOST below; characters other than letters, digits, `.`, `_` and `-` become
`_`), so several inventory hosts on one machine or sharing a home keep apart:

- `logs-rotate.HOST.state`: when each live file last rotated. Line 1 is `{"version": 1}`; every
  other line is a JSON array `[PATH, EPOCH]`: the live file's absolute path (bytes that are
  not UTF-8 written as \\udcXX escapes, as Python's surrogateescape reads them) and the time
  of its last rotation in seconds since the epoch. A file seen for the first time is recorded
  at the start of the current hour and not rotated, as logrotate does. To make a test believe
  a file rotated a day earlier, subtract 86400 from its EPOCH.
- `logs-rotate.HOST.journal`: the run in progress, a POSIX sh script written before anything
  changes; it is removed when the run completes.
- `logs-rotate.HOST.lock`: locked by the journal while it runs, so two runs of one host take
  turns; the second finds the state replaced and changes nothing rather than rotating again.
- `logs-rotate.HOST.progress`: one line per journal step done (`ok`, `skip`, `F UNIT` for a step
  that failed). A run finding a journal finishes it first, skipping the steps done.

The state file is replaced as a whole (written next to it, then renamed) by the journal's
last step, so an interrupted run leaves the previous state, never half of one.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

_DEFAULT_DIR = '"${MAINT_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/maint}"'
_YEAR = 366 * 86400


@dataclass(frozen=True)
class StateFiles:
    """The names of one inventory host's files in the state directory."""

    state: str
    journal: str
    progress: str
    lock: str


def state_files(host: str) -> StateFiles:
    """HOST's state, journal and progress file names (see the module docstring)."""
    stem = "logs-rotate." + re.sub(r"[^A-Za-z0-9._-]", "_", host)
    return StateFiles(f"{stem}.state", f"{stem}.journal", f"{stem}.progress", f"{stem}.lock")


def state_dir_shell(state_dir: str | None) -> str:
    """A shell word the host expands to its state directory (see the module docstring)."""
    if not state_dir:
        return _DEFAULT_DIR
    if state_dir == "~" or state_dir.startswith("~/"):
        return '"$HOME"' + shlex.quote(state_dir[1:]) if state_dir != "~" else '"$HOME"'
    return shlex.quote(state_dir)


def parse_state(text: bytes) -> dict[bytes, float]:
    """Last rotation per live path from the state file's TEXT; unreadable lines are dropped
    (a file without state is recorded anew, never rotated twice in a day because of it)."""
    state: dict[bytes, float] = {}
    for line in text.splitlines()[1:]:
        try:
            path, epoch = json.loads(line)
            state[path.encode("utf-8", "surrogateescape")] = float(epoch)
        except (ValueError, TypeError, UnicodeEncodeError):
            continue
    return state


def state_line(path: bytes, epoch: float) -> bytes:
    """One line of the state file (without its newline): pure ASCII, safe in a here-document."""
    return json.dumps([path.decode("utf-8", "surrogateescape"), round(epoch, 3)]).encode()


def state_header() -> bytes:
    return json.dumps({"version": 1}).encode()


def pruned(state: dict[bytes, float], seen: set[bytes], now: float) -> dict[bytes, float]:
    """STATE without entries of files no rule saw that have not rotated for a year."""
    return {path: when for path, when in state.items() if path in seen or now - when < _YEAR}
