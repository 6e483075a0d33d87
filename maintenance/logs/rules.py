"""Log cleanup rules from a host's `logs` var, validated once into frozen LogRule objects.

A rule's glob is split into a fixed base directory and a pattern below it. Everything the
rule may touch lies under that base, so a glob without one, or whose base is the root or a
top-level system directory, is refused before anything runs on the host.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Any

from ..errors import ConfigError
from ..inventory import Host
from ..units import parse_duration, parse_size

# Directories whose contents belong to the system: a rule must name something below them.
SYSTEM_DIRECTORIES = frozenset(
    {
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
        "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",  # noqa: S108 (refused, not used)
    }
)  # fmt: skip
CODEC_SUFFIXES = {"gzip": b".gz", "zstd": b".zst"}
# Files already compressed by some tool are never compressed again.
COMPRESSED_SUFFIXES = (b".gz", b".zst", b".xz", b".bz2", b".lz4", b".zip")
DEFAULT_MIN_AGE = timedelta(minutes=10)
_KEYS = {"path", "compress_after", "delete_after", "max_total_size", "min_age", "codec"}
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class LogRule:
    """One validated rule: where its files are, and what happens to them when."""

    path: str
    base: str
    pattern: tuple[str, ...]
    compress_after: timedelta | None = None
    delete_after: timedelta | None = None
    max_total_size: int | None = None
    min_age: timedelta = DEFAULT_MIN_AGE
    codec: str = "gzip"

    @property
    def max_depth(self) -> int | None:
        """How deep below the base matching files can lie; None when `**` allows any depth."""
        return None if "**" in self.pattern else len(self.pattern)

    @property
    def codec_suffix(self) -> bytes:
        return CODEC_SUFFIXES[self.codec]

    @cached_property
    def _regex(self) -> re.Pattern[str]:
        return pattern_regex(self.pattern)

    def matches(self, relative: bytes) -> bool:
        """Tell whether RELATIVE (a path below the base) matches the rule's pattern."""
        return self._regex.fullmatch(relative.decode("utf-8", "surrogateescape")) is not None

    def owns(self, relative: bytes) -> bool:
        """A file belongs to the rule if it matches, or is a compressed copy of a match."""
        if self.matches(relative):
            return True
        return any(
            relative.endswith(suffix) and self.matches(relative[: -len(suffix)])
            for suffix in CODEC_SUFFIXES.values()
        )


def split_glob(path: str) -> tuple[str, tuple[str, ...]]:
    """Split an absolute glob into its fixed base directory and the pattern below it.

    Raise ConfigError when the glob is relative, climbs with `..`, names a directory
    (trailing slash), or has no fixed directory part below the root or a system directory.
    """
    if not path.startswith("/"):
        raise ConfigError(f"path {path!r} must be absolute")
    if path.endswith("/"):
        raise ConfigError(f"path {path!r} names a directory; give a glob of files")
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ConfigError(f"path {path!r} must not contain '.' or '..' components")
    fixed = 0
    while fixed < len(parts) - 1 and not _GLOB_CHARS.intersection(parts[fixed]):
        fixed += 1
    base = "/" + "/".join(parts[:fixed])
    if base == "/":
        raise ConfigError(
            f"path {path!r} has no fixed directory part: name the directory its files are in"
        )
    if base in SYSTEM_DIRECTORIES:
        raise ConfigError(
            f"path {path!r} works directly in the system directory {base}: "
            "name the directory below it that holds the logs"
        )
    return base, tuple(parts[fixed:])


def pattern_regex(pattern: tuple[str, ...]) -> re.Pattern[str]:
    """A regex for relative paths matching PATTERN, with shell glob semantics.

    `*`, `?` and `[...]` stay within one path component and do not match a leading dot;
    a `**` component matches any number of directories (none included).
    """
    regex = ""
    for index, component in enumerate(pattern):
        last = index == len(pattern) - 1
        if component == "**":
            regex += r"(?:(?!\.)[^/]*/)*" if not last else r"(?:(?!\.)[^/]*/)*(?!\.)[^/]*"
            continue
        hidden = "" if component.startswith(".") else r"(?!\.)"
        regex += hidden + _component_regex(component) + ("" if last else "/")
    return re.compile(regex, re.DOTALL)


def _component_regex(component: str) -> str:
    out, index = [], 0
    while index < len(component):
        char = component[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            # A ']' right after '[' (or after its '!'/'^') is a member, as in the shell.
            first = index + (1 if component[index : index + 1] in ("!", "^") else 0)
            end = component.find("]", first + 1)
            if end < 0:
                out.append(re.escape(char))
                continue
            body, index = component[index:end], end + 1
            negate = body[:1] in ("!", "^")
            members = "".join(
                "\\" + member if member in "\\[]^&~|" else member
                for member in (body[1:] if negate else body)
            )
            out.append(("[^/" if negate else "[") + members + "]")
        else:
            out.append(re.escape(char))
    return "".join(out)


def parse_rules(host: Host) -> list[LogRule]:
    """The host's `logs` var as rules. Raise ConfigError listing every problem found."""
    raw = host.var("logs")
    if raw is None:
        return []
    where = f"host {host.name!r}: key 'logs'"
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of rules, got {type(raw).__name__}")
    rules, problems = [], []
    for index, entry in enumerate(raw):
        try:
            rules.append(_parse_rule(entry, f"host {host.name!r}", f"logs[{index}]"))
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return rules


def _parse_rule(entry: Any, host: str, key: str) -> LogRule:
    where = f"{host}: key '{key}'"

    def at(field: str) -> str:
        return f"{host}: key '{key}.{field}'"

    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with a 'path', got {entry!r}")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(expected {', '.join(sorted(_KEYS))})"
        )
    if not isinstance(entry.get("path"), str) or not entry["path"].strip():
        raise ConfigError(f"{at('path')}: expected a glob such as /var/log/app/*.log")
    path = entry["path"].strip()
    try:
        base, pattern = split_glob(path)
    except ConfigError as exc:
        raise ConfigError(f"{at('path')}: {exc}") from None

    def duration(field: str) -> timedelta | None:
        value = entry.get(field)
        return None if value is None else parse_duration(value, at(field))

    codec = str(entry.get("codec", "gzip"))
    if codec not in CODEC_SUFFIXES:
        raise ConfigError(f"{at('codec')}: expected gzip or zstd, got {codec!r}")
    size = entry.get("max_total_size")
    rule = LogRule(
        path=path,
        base=base,
        pattern=pattern,
        compress_after=duration("compress_after"),
        delete_after=duration("delete_after"),
        max_total_size=None if size is None else parse_size(size, at("max_total_size")),
        min_age=duration("min_age") if entry.get("min_age") is not None else DEFAULT_MIN_AGE,
        codec=codec,
    )
    if rule.compress_after is None and rule.delete_after is None and rule.max_total_size is None:
        raise ConfigError(
            f"{where}: rule for {path!r} does nothing: set compress_after, delete_after "
            "or max_total_size"
        )
    return rule
