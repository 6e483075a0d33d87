"""The shell commands that list and act on a rule's files on the host, one round trip each.

Paths travel as NUL-separated bytes both ways, so names with spaces, newlines or bytes that
are not UTF-8 arrive intact, and the work is batched: one `find` lists the rule's tree, one
command compresses every planned file, one deletes them, whatever their number. Only POSIX
sh, coreutils, findutils and gzip (or zstd) are needed on the host.

Every action re-checks each path on the host just before acting: with `find -P` (symbolic
links are never followed) it must still be a single-link regular file not modified after
the rule's min_age cutoff; anything else is left alone.
"""

from __future__ import annotations

import io
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CommandError
from ..runners import Runner
from ..settings.logs import LogRule
from .plan import LogFile
from .rules import max_depth

_NO_BASE = 90
_NO_ZSTD = 91
_TOOLS = {"gzip": "gzip -n --", "zstd": "zstd -q --rm --"}


class RuleError(CommandError):
    """A rule could not be carried out on the host (missing directory, tool, listing error)."""


def list_files(runner: Runner, rule: LogRule) -> tuple[float, list[LogFile]]:
    """Every entry below the rule's base (up to its depth) and the host's clock, in one trip.

    Raise RuleError when the base is missing, not a directory or a symbolic link, when the
    rule asks for zstd and the host has none, or when find fails.
    """
    output = run_bytes(runner, _listing_command(rule))
    if output.exit_code == _NO_BASE:
        raise RuleError(
            f"base directory {rule.base} does not exist, is not a directory, or is a "
            "symbolic link (never followed)"
        )
    if output.exit_code == _NO_ZSTD:
        raise RuleError(f"rule {rule.path!r} asks for zstd, but zstd is not installed on the host")
    if output.exit_code != 0:
        raise RuleError(f"listing {rule.base} failed: {output.stderr.strip()}")
    records = output.data.split(b"\0")
    now = float(records[0])
    base = rule.base.encode("utf-8", "surrogateescape")
    files = []
    for record in records[1:]:
        if not record:
            continue
        kind, links, size, mtime, relative = record.split(b" ", 4)
        files.append(
            LogFile(
                path=base + b"/" + relative,
                kind=kind.decode(),
                size=int(size),
                mtime=float(mtime),
                links=int(links),
            )
        )
    return now, files


def _listing_command(rule: LogRule) -> str:
    base = shlex.quote(rule.base)
    levels = max_depth(rule)
    depth = f" -maxdepth {levels}" if levels is not None else ""
    lines = [
        "LC_ALL=C; export LC_ALL",
        f"if [ -h {base} ] || [ ! -d {base} ]; then exit {_NO_BASE}; fi",
    ]
    if rule.codec == "zstd" and rule.compress_after is not None:
        lines.append(f"command -v zstd >/dev/null 2>&1 || exit {_NO_ZSTD}")
    lines += [
        "printf '%s\\000' \"$(date +%s)\"",
        f"exec find -P {base} -mindepth 1{depth} -printf '%y %n %s %T@ %P\\0'",
    ]
    return "\n".join(lines)


def compress_files(
    runner: Runner, paths: Sequence[bytes], codec: str, suffix: bytes, cutoff: float
) -> tuple[dict[bytes, int], str]:
    """Compress PATHS in place with CODEC, keeping each file's mtime, in one round trip.

    Return the size of each compressed copy by original path (files the host refused to
    compress are missing) and the command's stderr.
    """
    recheck = _recheck(cutoff)
    suffix_text = suffix.decode()  # .gz or .zst: safe inside a find -printf format
    batch = "xargs -0 -r sh -c 'exec find -P \"$@\" -maxdepth 0 {}' sh"
    script = "\n".join(
        [
            "LC_ALL=C; export LC_ALL",
            "dir=$(mktemp -d) || exit 1",
            "trap 'rm -rf \"$dir\"' EXIT",
            # Re-check every path, then note the name each compressed copy will have.
            batch.format(f"{recheck} -print0") + ' > "$dir/todo"',
            batch.format(f'-printf "%p{suffix_text}\\0"') + ' < "$dir/todo" > "$dir/copies"',
            f'xargs -0 -r {_TOOLS[codec]} < "$dir/todo"',
            "status=$?",
            # Report the compressed copies that exist now, with their sizes.
            batch.format('-type f -printf "%s %p\\0"') + ' < "$dir/copies" 2>/dev/null',
            'exit "$status"',
        ]
    )
    output = run_bytes(runner, script, _nul_list(paths))
    sizes = {path[: -len(suffix)]: size for path, size in _sized_paths(output.data)}
    return sizes, output.stderr


def delete_files(
    runner: Runner, paths: Sequence[bytes], cutoff: float
) -> tuple[dict[bytes, int], str]:
    """Delete PATHS in one round trip; return the size of each file really deleted and stderr."""
    script = (
        "LC_ALL=C; export LC_ALL\n"
        f'exec xargs -0 -r sh -c \'exec find -P "$@" -maxdepth 0 {_recheck(cutoff)} -delete '
        '-printf "%s %p\\0"\' sh'
    )
    output = run_bytes(runner, script, _nul_list(paths))
    return dict(_sized_paths(output.data)), output.stderr


def _recheck(cutoff: float) -> str:
    """find tests a path must still pass when acted on; CUTOFF is the host's min_age bound."""
    return f"-type f -links 1 ! -newermt @{cutoff:.6f}"


def _nul_list(paths: Sequence[bytes]) -> bytes:
    return b"".join(path + b"\0" for path in paths)


def _sized_paths(data: bytes) -> list[tuple[bytes, int]]:
    pairs = []
    for record in data.split(b"\0"):
        if record:
            size, path = record.split(b" ", 1)
            pairs.append((path, int(size)))
    return pairs


@dataclass(frozen=True)
class Output:
    exit_code: int
    data: bytes
    stderr: str


def run_bytes(runner: Runner, script: str, stdin: bytes | None = None) -> Output:
    """Run SCRIPT keeping stdout as bytes (run() would decode, mangling odd file names)."""
    buffer = io.BytesIO()
    result = runner.stream(
        script, stdout=buffer, stdin=io.BytesIO(stdin) if stdin is not None else None
    )
    return Output(result.exit_code, buffer.getvalue(), result.stderr)
