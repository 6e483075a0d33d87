"""The journal: the host's whole rotation plan as one program saved in the state directory.

It is the source of `journal.py` (the runner, standard library only) followed by the plan
as JSON; logs.rotate sends it in the same round trip that saves and starts it with the host's
python3, and a later run finds it there when the first was interrupted (journal.py says how
it resumes). This module writes the plan and reads back what the journal reported.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import journal as runner
from .rotate_plan import Step
from .rotate_state import StateFiles, state_header, state_line

NO_PYTHON = 97  # exit status of the start command on a host without python3
STALE = runner.STALE


def _text(path: bytes) -> str:
    """A path as the runner reads it: one latin-1 character per byte."""
    return path.decode("latin-1")


def step_record(step: Step) -> list[Any]:
    """STEP as the runner's plan has it: [unit, kind, arguments...]."""
    if step.kind == "postrotate":
        return [0, "postrotate", _text(step.path), step.command]
    if step.kind == "prepare":
        spec = step.create
        mode = spec.mode if spec else None
        return [
            step.unit,
            "prepare",
            _text(step.path),
            mode,
            spec and spec.owner,
            spec and spec.group,
        ]
    if step.kind == "compress":
        return [step.unit, "compress", _text(step.path), _text(step.target), step.codec]
    if step.kind in ("rename", "copy"):
        return [step.unit, step.kind, _text(step.path), _text(step.target)]
    return [step.unit, step.kind, _text(step.path)]


def journal(
    steps: Iterable[Step],
    state: dict[bytes, float],
    rotated: dict[bytes, tuple[int, float]],
    listed_state: bytes,
) -> bytes:
    """The journal: STEPS, then the new STATE.

    ROTATED maps each live path rotated by this plan to its unit and its previous state
    (0: none); a unit that failed keeps that previous state, so it rotates next time.
    LISTED_STATE is the state file the plan was made from: the journal does nothing if
    another run has replaced it since.
    """
    entries = []
    for path, when in sorted(state.items()):
        unit, before = rotated.get(path, (0, 0.0))
        previous = state_line(path, before).decode() if before else ""
        entries.append([state_line(path, when).decode(), previous, unit])
    plan = {
        "steps": [step_record(step) for step in steps],
        "header": state_header().decode(),
        "state": entries,
        "state_digest": hashlib.sha256(listed_state).hexdigest(),
        "run": uuid.uuid4().hex,  # tells this run's journal from another's at the same path
    }
    source = inspect.getsource(runner)
    call = f"\n\nstart({json.dumps(json.dumps(plan))})\n"
    return (source + call).encode()


def start_command(state_dir: str, files: StateFiles) -> str:
    """Save the journal read from stdin, then run it: one round trip for the whole plan.

    python3 reads the journal from a descriptor opened before the rename, so a run of the
    same host finishing meanwhile (and removing the journal) cannot pull it away.
    """
    journal = f'"$d/{files.journal}"'
    saved = f'"$d/{files.journal}.$$"'
    return (
        f"command -v python3 >/dev/null 2>&1 || exit {NO_PYTHON}\n"
        f'd={state_dir}; mkdir -p "$d" && cat > {saved} && exec 3< {saved} && '
        f"mv -f -- {saved} {journal} && exec python3 - {journal} fresh <&3 3<&-"
    )


def resume_command(state_dir: str, files: StateFiles) -> str:
    """Finish the journal an interrupted run left; it skips the steps already done."""
    journal = f'"$d/{files.journal}"'
    return f"d={state_dir}; exec python3 - {journal} < {journal}"


@dataclass
class Outcome:
    """What the journal reported: failed units with their error, postrotate runs."""

    failures: dict[int, str] = field(default_factory=dict)
    postrotate: dict[int, tuple[int, str]] = field(default_factory=dict)  # step: (status, tail)


def read_outcome(data: bytes) -> Outcome:
    outcome = Outcome()
    records = data.split(b"\0")
    index = 0
    while index < len(records):
        record = records[index]
        if record.startswith(b"F "):
            unit, _, error = record[2:].partition(b" ")
            outcome.failures[int(unit)] = error.decode("utf-8", "replace").strip()
        elif record.startswith(b"P ") and index + 1 < len(records):
            step, _, status = record[2:].partition(b" ")
            index += 1
            tail = records[index].decode("utf-8", "replace").rstrip("\n")
            outcome.postrotate[int(step)] = (int(status), tail)
        index += 1
    return outcome
