"""The journal: one POSIX sh script carrying out a host's whole rotation plan, and its report.

The script is written to the state directory before it runs (rotate_state says where), and
appends a line to the progress file after each step, so a run killed at any point is finished
by the next one from the step it was on. Each step is safe to repeat after it was done but
not yet recorded: a rename whose target exists is done, a compression whose copy exists only
removes the original, a create finding the file there leaves it. The new live file is
made aside (owner and mode set) before its file's first rename, so an unknown owner fails
the rotation before anything moved. A step that fails marks its
live file's rotation failed; the file's remaining steps are skipped and its state is kept,
so it rotates on the next run. The last step writes the new state, then the journal goes.

Paths are bytes quoted for sh one by one; symbolic links are never followed: a path that is
a link (or no longer a regular file) is left alone. Needs sh, GNU coreutils and gzip or zstd.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .rotate_plan import Step
from .rotate_state import StateFiles, state_header, state_line

OUTPUT_TAIL = 2000  # bytes of a postrotate command's output kept for the report
_TOOLS = {"gz": "gzip -c", "zstd": "zstd -q -c"}

# Step functions: each returns non-zero (with a message on stderr) when it could not act.
_PRELUDE = r"""
set -u
LC_ALL=C; export LC_ALL
umask 077
progress=$d/PROGRESS
done=0; failed=' '
if [ -f "$progress" ]; then
  done=$(grep -c '' "$progress")
  failed=" $(sed -n 's/^F //p' "$progress" | tr '\n' ' ')"
fi
plain() { [ -f "$1" ] && [ ! -h "$1" ]; }
there() { [ -e "$1" ] || [ -h "$1" ]; }
delete() { if plain "$1"; then rm -f -- "$1"; fi; }
rename() {
  there "$2" && return 0
  plain "$1" || return 0
  mv -T -- "$1" "$2"
}
copy() {
  there "$2" && return 0
  rm -f -- "$2.maint-tmp"
  cp -p -- "$1" "$2.maint-tmp" && mv -T -- "$2.maint-tmp" "$2"
}
truncate_() { if plain "$1"; then : > "$1"; fi; }
compress() {
  if there "$2"; then delete "$1"; return 0; fi
  plain "$1" || return 0
  rm -f -- "$2.maint-tmp"
  $3 < "$1" > "$2.maint-tmp" &&
    chown --reference="$1" -- "$2.maint-tmp" && chmod --reference="$1" -- "$2.maint-tmp" &&
    touch -r "$1" -- "$2.maint-tmp" && mv -T -- "$2.maint-tmp" "$2" && rm -f -- "$1"
  status=$?; rm -f -- "$2.maint-tmp"; return $status
}
prepare() {
  rm -f -- "$1.maint-tmp"
  { : > "$1.maint-tmp" && chown --reference="$1" -- "$1.maint-tmp" &&
    if [ -n "$3" ]; then chown -- "$3${4:+:$4}" "$1.maint-tmp"; fi &&
    if [ -n "$2" ]; then chmod -- "$2" "$1.maint-tmp"
    else chmod --reference="$1" -- "$1.maint-tmp"; fi
  } || { status=$?; rm -f -- "$1.maint-tmp"; return $status; }
}
create() {
  if there "$1"; then rm -f -- "$1.maint-tmp"; return 0; fi
  ln -- "$1.maint-tmp" "$1" 2>/dev/null || there "$1"
  status=$?; rm -f -- "$1.maint-tmp"; return $status
}
n=0
s() {
  unit=$1; shift; n=$((n + 1))
  [ "$n" -le "$done" ] && return 0
  case $failed in *" $unit "*) echo skip >> "$progress"; return 0;; esac
  if error=$("$@" 2>&1); then echo ok >> "$progress"; else
    failed="$failed$unit "; echo "F $unit" >> "$progress"
    printf 'F %s %s\0' "$unit" "$error"
  fi
}
post() {
  n=$((n + 1))
  [ "$n" -le "$done" ] && return 0
  output=$(sh -c "$2" logrotate_script "$1" 2>&1 < /dev/null); status=$?
  echo ok >> "$progress"
  printf 'P %s %s\0%s\0' "$n" "$status" "$(printf '%s' "$output" | tail -c OUTPUT_TAIL)"
}
rotated() { case $failed in *" $1 "*) printf '%s\n' "$3";; *) printf '%s\n' "$2";; esac; }
"""


def quote(path: bytes) -> bytes:
    """PATH as one sh word, whatever bytes it holds (NUL cannot be in a path)."""
    return b"'" + path.replace(b"'", b"'\\''") + b"'"


def _word(text: str) -> bytes:
    return quote(text.encode("utf-8", "surrogateescape"))


def step_line(step: Step) -> bytes:
    """The journal line carrying out STEP."""
    unit = str(step.unit).encode()
    if step.kind == "postrotate":
        return b"post " + quote(step.path) + b" " + _word(step.command)
    if step.kind == "prepare":
        spec = step.create
        mode = f"{spec.mode:o}" if spec and spec.mode is not None else ""
        owner = (spec.owner or "") if spec else ""
        group = (spec.group or "") if spec else ""
        words = [quote(step.path), _word(mode), _word(owner), _word(group)]
        return b"s " + unit + b" prepare " + b" ".join(words)
    if step.kind == "compress":
        tool = _word(_TOOLS[step.codec])
        return b" ".join([b"s", unit, b"compress", quote(step.path), quote(step.target), tool])
    function = b"truncate_" if step.kind == "truncate" else step.kind.encode()
    words = [quote(step.path)] + ([quote(step.target)] if step.target else [])
    return b"s " + unit + b" " + function + b" " + b" ".join(words)


def journal(
    state_dir: str,
    files: StateFiles,
    steps: Iterable[Step],
    state: dict[bytes, float],
    rotated: dict[bytes, tuple[int, float]],
) -> bytes:
    """The whole journal: STEPS, then the new STATE.

    ROTATED maps each live path rotated by this plan to its unit and its previous state
    (0: none); a unit that failed keeps that previous state, so it rotates next time.
    """
    prelude = _PRELUDE.replace("PROGRESS", files.progress).replace("OUTPUT_TAIL", str(OUTPUT_TAIL))
    lines = [b"d=" + state_dir.encode(), prelude.encode()]
    lines += [step_line(step) for step in steps]
    lines.append(b"n=$((n + 1))")
    lines.append(b'if [ "$n" -gt "$done" ]; then')
    lines.append(b"{")
    lines.append(b"printf '%s\\n' " + quote(state_header()))
    for path, when in sorted(state.items()):
        line = state_line(path, when)
        if path in rotated:
            unit, before = rotated[path]
            previous = state_line(path, before) if before else b""
            lines.append(
                b"rotated " + str(unit).encode() + b" " + quote(line) + b" " + quote(previous)
            )
        else:
            lines.append(b"printf '%s\\n' " + quote(line))
    state_file = files.state.encode()
    lines.append(b'} | grep -v "^$" > "$d/' + state_file + b'.tmp" &&')
    lines.append(b'  mv -f -- "$d/' + state_file + b'.tmp" "$d/' + state_file + b'" || exit 1')
    lines.append(b'echo ok >> "$progress"')
    lines.append(b"fi")
    lines.append(b'rm -f -- "$progress" "$d/' + files.journal.encode() + b'"')
    return b"\n".join(lines) + b"\n"


def start_command(state_dir: str, files: StateFiles) -> str:
    """Save the journal read from stdin, then run it: one round trip for the whole plan."""
    journal = files.journal
    return (
        f'd={state_dir}; mkdir -p "$d" && '
        f'cat > "$d/{journal}.tmp" && mv -f -- "$d/{journal}.tmp" "$d/{journal}" && '
        f'rm -f -- "$d/{files.progress}" && exec sh "$d/{journal}"'
    )


def resume_command(state_dir: str, files: StateFiles) -> str:
    """Finish the journal an interrupted run left; it skips the steps already done."""
    return f'd={state_dir}; exec sh "$d/{files.journal}"'


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
            tail = records[index].decode("utf-8", "replace")
            outcome.postrotate[int(step)] = (int(status), tail)
        index += 1
    return outcome
