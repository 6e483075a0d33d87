"""The journal runner: carries out a host's rotation plan on the host, resuming where it stopped.

Standard library only, self-contained and Python 3.8 compatible (Ubuntu 20.04's), because
this module's source, followed by the plan, is the journal file logs.rotate writes to the
state directory and runs with the host's python3: every rename, compression and create is a
system call in one process, where a shell would start a program per step (a thousand files
with thirty rotated copies each is thirty thousand renames).

The progress file gets a line per step done (`ok`, `skip`, `F UNIT` for a step that failed),
so a run killed at any point is finished by the next from the step it was on. Each step is
safe to repeat after it was done but not yet recorded: a rename whose target exists is done,
a compression whose copy exists (copies appear whole, by rename) only removes the original,
a create finding the file there leaves it. A step that fails marks its live file's rotation
failed: the file's later steps are skipped and its state is kept, so it rotates next time.
Symbolic links are never followed: a path that is a link, or no longer a regular file, is
left alone. Paths travel as latin-1 text, one character per byte of the name.

Output on stdout, NUL-separated: `F UNIT MESSAGE` per failed step, `P STEP STATUS` then the
tail of the output of each postrotate run.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import gzip
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
from typing import Any

TEMPORARY = b".maint-tmp"
OUTPUT_TAIL = 2000  # bytes of a postrotate command's output kept for the report
STALE = 75  # exit status: another run changed the state since this plan was made


def _path(text: str) -> bytes:
    return text.encode("latin-1")


def _plain(path: bytes) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _there(path: bytes) -> bool:
    return os.path.lexists(path)


def delete(path: bytes) -> None:
    if _plain(path):
        os.unlink(path)


def rename(source: bytes, target: bytes) -> None:
    if _there(target) or not _plain(source):
        return
    os.rename(source, target)


def _same_owner(path: bytes, like: os.stat_result) -> None:
    """Give PATH LIKE's owner, mode and times (chown first: it may clear setuid bits)."""
    if os.geteuid() == 0 or like.st_uid == os.geteuid():
        os.chown(path, like.st_uid, like.st_gid, follow_symlinks=False)
    os.chmod(path, stat.S_IMODE(like.st_mode))
    os.utime(path, ns=(like.st_atime_ns, like.st_mtime_ns))


def copy(source: bytes, target: bytes) -> None:
    if _there(target):
        return
    temporary = target + TEMPORARY
    with open(source, "rb") as reader, open(temporary, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
    _same_owner(temporary, os.lstat(source))
    os.rename(temporary, target)


def truncate(path: bytes) -> None:
    if _plain(path):
        os.truncate(path, 0)


def compress(source: bytes, target: bytes, codec: str) -> None:
    """SOURCE compressed into TARGET with its mode, owner and mtime, then SOURCE removed."""
    if _there(target):
        if _plain(source):
            os.unlink(source)  # the copy appeared whole (by rename): only the removal was left
        return
    if not _plain(source):
        return
    temporary = target + TEMPORARY
    like = os.lstat(source)
    with open(source, "rb") as reader, open(temporary, "wb") as raw:
        if codec == "zstd":
            subprocess.run(["zstd", "-q", "-c"], stdin=reader, stdout=raw, check=True)
        else:
            with gzip.GzipFile(filename="", mode="wb", compresslevel=6, fileobj=raw) as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
    _same_owner(temporary, like)
    os.rename(temporary, target)
    os.unlink(source)


def _account(name: str, kind: str) -> int:
    if name.isdigit():
        return int(name)
    try:
        return pwd.getpwnam(name).pw_uid if kind == "user" else grp.getgrnam(name).gr_gid
    except KeyError:
        raise LookupError(f"unknown {kind} {name!r} on the host") from None


def prepare(live: bytes, mode: int | None, owner: str | None, group: str | None) -> None:
    """The new live file, made aside with its owner and mode before anything is renamed."""
    like = os.lstat(live)
    uid = _account(owner, "user") if owner else like.st_uid
    gid = _account(group, "group") if group else like.st_gid
    temporary = live + TEMPORARY
    if _there(temporary):
        os.unlink(temporary)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchown(descriptor, uid, gid)
        os.fchmod(descriptor, stat.S_IMODE(like.st_mode) if mode is None else mode)
    finally:
        os.close(descriptor)


def create(live: bytes) -> None:
    temporary = live + TEMPORARY
    if not _there(live) and _there(temporary):
        with contextlib.suppress(FileExistsError):  # the program made its own: it keeps it
            os.link(temporary, live)
    if _there(temporary):
        os.unlink(temporary)


def postrotate(argument: bytes, command: str) -> tuple[int, bytes]:
    done = subprocess.run(
        ["sh", "-c", command, "logrotate_script", argument],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return done.returncode, done.stdout[-OUTPUT_TAIL:]


class Progress:
    """The progress file: how many steps are done, which units failed; one line per step."""

    def __init__(self, path: bytes) -> None:
        lines = []
        if os.path.exists(path):
            with open(path, "rb") as reader:
                lines = reader.read().decode("ascii", "replace").splitlines()
        self.done = len(lines)
        self.failed = {line[2:] for line in lines if line.startswith("F ")}
        self.path = path
        self.descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def record(self, line: str) -> None:
        os.write(self.descriptor, (line + "\n").encode())


def _emit(*parts: bytes) -> None:
    sys.stdout.buffer.write(b"".join(part + b"\0" for part in parts))
    sys.stdout.buffer.flush()


def _step(progress: Progress, step: list[Any]) -> None:
    unit, kind, arguments = str(step[0]), step[1], step[2:]
    if unit in progress.failed:
        progress.record("skip")
        return
    try:
        if kind == "prepare":
            prepare(_path(arguments[0]), arguments[1], arguments[2], arguments[3])
        elif kind == "compress":
            compress(_path(arguments[0]), _path(arguments[1]), arguments[2])
        elif kind in ("rename", "copy"):
            (rename if kind == "rename" else copy)(_path(arguments[0]), _path(arguments[1]))
        else:
            {"delete": delete, "truncate": truncate, "create": create}[kind](_path(arguments[0]))
    except (OSError, LookupError, subprocess.CalledProcessError) as exc:
        progress.failed.add(unit)
        progress.record("F " + unit)
        _emit(f"F {unit} {kind} {arguments[0]!r}: {exc}".encode("utf-8", "replace"))
        return
    progress.record("ok")


def _digest(path: bytes) -> str:
    try:
        with open(path, "rb") as reader:
            return hashlib.sha256(reader.read()).hexdigest()
    except FileNotFoundError:
        return hashlib.sha256(b"").hexdigest()


def run(journal: bytes, plan: dict[str, Any], fresh: bool) -> None:
    """Carry out PLAN's steps from the first not done, then write the state, then forget.

    Runs of one host take turns (a lock file beside the state). A run whose plan was made
    from a state another run has since replaced, or whose journal another run finished,
    changes nothing and exits STALE: its plan would rotate files a second time.
    """
    stem = journal[: -len(b".journal")]
    lock = os.open(stem + b".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not _there(journal):
        sys.exit(STALE)
    if fresh and _there(stem + b".progress"):
        os.unlink(stem + b".progress")
    progress = Progress(stem + b".progress")
    steps = plan["steps"]
    state_written = progress.done > len(steps)
    if not state_written and _digest(stem + b".state") != plan["state_digest"]:
        _forget(journal, plan["run"], progress)
        sys.exit(STALE)
    for number, step in enumerate(steps, start=1):
        if number <= progress.done:
            continue
        if step[1] == "postrotate":
            status, output = postrotate(_path(step[2]), step[3])
            progress.record("ok")
            _emit(f"P {number} {status}".encode(), output)
        else:
            _step(progress, step)
    if len(steps) + 1 > progress.done:
        lines = [plan["header"]]
        for line, previous, unit in plan["state"]:
            lines.append(previous if unit and str(unit) in progress.failed else line)
        temporary = stem + b".state" + TEMPORARY
        with open(temporary, "w") as writer:
            writer.write("".join(line + "\n" for line in lines if line))
        os.rename(temporary, stem + b".state")
        progress.record("ok")
    _forget(journal, plan["run"], progress)


def _forget(journal: bytes, run_id: str, progress: Progress) -> None:
    """Remove the journal, if it is still this run's, and its progress file."""
    os.close(progress.descriptor)
    try:
        with open(journal, "rb") as reader:
            ours = run_id.encode() in reader.read()
    except FileNotFoundError:
        ours = False
    if ours:
        os.unlink(progress.path)
        os.unlink(journal)


def start(plan_json: str) -> None:
    """The journal's last line calls this: it runs as `python3 - JOURNAL [fresh] < JOURNAL`."""
    run(os.fsencode(sys.argv[1]), json.loads(plan_json), sys.argv[2:] == ["fresh"])
