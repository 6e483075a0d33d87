"""Read a logrotate configuration file into rotation rules, or refuse it naming file and line.

Only the directives logs.rotate carries out are read (docs/logs.md has the table); any other
is refused rather than ignored, because a rule silently missing a directive (`olddir`, `su`,
`prerotate`) would rotate differently from what its author wrote. Directives before the first
block apply to the blocks after them, as in logrotate; `include` is refused.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..settings.durations import parse_age
from ..settings.logs import MAX_KEEP, parse_create
from .rotation import Glob, RotateRule

# logrotate's defaults for a file that says nothing: rotate 0, size 1M, no compression.
DEFAULT_SIZE = 1024 * 1024
_FLAGS = {
    "compress": ("compress", "gz"),
    "nocompress": ("compress", None),
    "delaycompress": ("delay_compress", True),
    "nodelaycompress": ("delay_compress", False),
    "copytruncate": ("copytruncate", True),
    "nocopytruncate": ("copytruncate", False),
    "missingok": ("missing_ok", True),
    "nomissingok": ("missing_ok", False),
    "notifempty": ("not_if_empty", True),
    "ifempty": ("not_if_empty", False),
    "dateext": ("date_ext", True),
    "nodateext": ("date_ext", False),
    "sharedscripts": ("shared_scripts", True),
    "nosharedscripts": ("shared_scripts", False),
    "nocreate": ("create", None),
}
_CADENCES = {"daily", "weekly", "monthly"}
_SIZES = {"size", "maxsize", "minsize"}
_UNITS = {"": 1, "k": 1024, "M": 1024**2, "G": 1024**3}
_ZSTD = {"zstd", "/usr/bin/zstd", "/bin/zstd", "/usr/local/bin/zstd"}
_GZIP = {"gzip", "/bin/gzip", "/usr/bin/gzip"}
# Accepted as long as they say what logs.rotate does anyway.
_SAME_AS_OURS = {
    "dateformat": {"-%Y%m%d"},
    "uncompresscmd": {"gunzip", "/bin/gunzip", "/usr/bin/gunzip", "unzstd", "/usr/bin/unzstd"},
}


@dataclass
class _Options:
    """The directives in force for a block: the file's globals, then the block's own."""

    values: dict[str, Any] = field(
        default_factory=lambda: {"keep": 0, "size": DEFAULT_SIZE, "shared_scripts": False}
    )
    compresscmd: str = "gzip"
    compressext: str | None = None

    def copy(self) -> _Options:
        return replace(self, values=dict(self.values))


class _Refusal(Exception):
    """A directive logs.rotate cannot carry out, or a value it cannot read, on LINE."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def parse_logrotate(text: str, filename: str) -> list[RotateRule]:
    """The rules of the logrotate file FILENAME, whose content is TEXT.

    Raise ConfigError naming the file, the line and the directive that is not supported.
    """
    rules: list[RotateRule] = []
    defaults = _Options()
    lines = _numbered(text)
    pending: list[tuple[int, str]] = []  # globs read before their block's '{'
    for number, line in lines:
        try:
            if line.endswith("{"):
                words = _words(line[:-1])
                pending += [(number, word) for word in words]
                if not pending:
                    raise _Refusal("'{' without a file name before it")
                rules.append(_block(pending, lines, defaults, filename))
                pending = []
            elif line.startswith("/") or line.startswith('"/'):
                pending += [(number, word) for word in _words(line)]
            else:
                if pending:
                    raise _Refusal(f"file names {pending[0][1]!r} are not followed by '{{'")
                _directive(line, defaults, lines)
        except _Refusal as exc:
            raise ConfigError(f"{filename}:{exc.line or number}: {exc}") from None
    if pending:
        raise ConfigError(f"{filename}:{pending[0][0]}: file names without a '{{' block")
    return rules


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) for every line that is not blank or a comment."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError as exc:
        raise _Refusal(f"cannot read {text!r}: {exc}") from None


def _block(
    globs: list[tuple[int, str]],
    lines: Iterator[tuple[int, str]],
    defaults: _Options,
    filename: str,
) -> RotateRule:
    """Read a block's directives up to its '}' into a rule for GLOBS."""
    options = defaults.copy()
    for number, line in lines:
        if line == "}":
            break
        try:
            _directive(line, options, lines)
        except _Refusal as exc:
            exc.line = exc.line or number
            raise
    else:
        raise _Refusal("the block has no closing '}'")
    parsed = []
    for _, text in globs:
        for expanded in expand_braces(text):
            try:
                parsed.append(Glob.parse(expanded))
            except ValueError as exc:
                raise _Refusal(str(exc)) from None
    return _rule(options, tuple(parsed), f"{filename}:{globs[0][0]}")


def _rule(options: _Options, globs: tuple[Glob, ...], source: str) -> RotateRule:
    values = dict(options.values)
    if values.get("compress"):
        values["compress"] = _codec(options)
    if values.get("delay_compress") and not values.get("compress"):
        values["delay_compress"] = False  # logrotate ignores delaycompress without compress
    if values.get("copytruncate"):
        values.pop("create", None)  # logrotate: copytruncate wins over create
    return RotateRule(source=source, globs=globs, **values)


def _codec(options: _Options) -> str:
    if options.compresscmd in _ZSTD:
        codec, suffix = "zstd", ".zst"
    elif options.compresscmd in _GZIP:
        codec, suffix = "gz", ".gz"
    else:
        raise _Refusal(f"compresscmd {options.compresscmd!r}: only gzip and zstd are supported")
    if options.compressext not in (None, suffix):
        raise _Refusal(f"compressext {options.compressext!r} does not match {codec} ({suffix})")
    return codec


def _directive(line: str, options: _Options, lines: Iterator[tuple[int, str]]) -> None:
    """Apply one directive LINE to OPTIONS (postrotate reads its script from LINES)."""
    words = _words(line)
    name, args = words[0], words[1:]
    values = options.values
    if name in _FLAGS and not args:
        key, value = _FLAGS[name]
        values[key] = value
    elif name in _CADENCES and not args:
        values["cadence"] = name
        values.pop("size", None)
    elif name in _SIZES and len(args) == 1:
        values[name] = _size(args[0])
        if name == "size":
            values.pop("cadence", None)
    elif name == "rotate" and len(args) == 1:
        values["keep"] = _number(args[0], MAX_KEEP)
    elif name == "maxage" and len(args) == 1:
        values["max_age"] = parse_age(f"{_number(args[0], 36500)}d", deletes=True)
    elif name == "create":
        values["create"] = _create(" ".join(args))
    elif name == "compresscmd" and len(args) == 1:
        options.compresscmd = args[0]
    elif name == "compressext" and len(args) == 1:
        options.compressext = args[0]
    elif name in _SAME_AS_OURS and len(args) == 1 and args[0] in _SAME_AS_OURS[name]:
        pass
    elif name == "postrotate" and not args:
        values["postrotate"] = _script(lines)
    else:
        shown = f"{name} {' '.join(args)}".strip()
        raise _Refusal(f"directive {shown!r} is not supported by logs.rotate (docs/logs.md)")


def _script(lines: Iterator[tuple[int, str]]) -> str:
    body: list[str] = []
    for _, line in lines:
        if line == "endscript":
            return "\n".join(body)
        body.append(line)
    raise _Refusal("postrotate has no endscript")


def _create(text: str) -> Any:
    try:
        return parse_create(text)
    except ValueError as exc:
        raise _Refusal(f"create {text}: {exc}") from None


def _number(text: str, most: int) -> int:
    if not text.isdigit() or int(text) > most:
        raise _Refusal(f"expected a whole number from 0 to {most}, got {text!r}")
    return int(text)


def _size(text: str) -> int:
    match = re.fullmatch(r"\+?([0-9]+)([kMG]?)", text)
    if not match:
        raise _Refusal(f"expected a size such as 100k, 10M or 1G, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def expand_braces(text: str) -> list[str]:
    """The globs a logrotate name with braces stands for: /a/{b,c}.log -> /a/b.log, /a/c.log."""
    match = re.search(r"\{([^{}]*)\}", text)
    if match is None:
        return [text]
    head, tail = text[: match.start()], text[match.end() :]
    return [
        expanded
        for choice in match.group(1).split(",")
        for expanded in expand_braces(head + choice + tail)
    ]
