"""Which files a rule owns: its glob matched with shell semantics below the rule's base.

The rule itself (its shape, its safety checks) is the settings model's `LogRule`; this module
is what the glob means when a listing of the host's files comes back.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..settings.logs import LogRule
from .rotation import rotated_stem

CODEC_SUFFIXES = {"gzip": b".gz", "zstd": b".zst"}
# Files already compressed by some tool are never compressed again.
COMPRESSED_SUFFIXES = (b".gz", b".zst", b".xz", b".bz2", b".lz4", b".zip")


def max_depth(rule: LogRule) -> int | None:
    """How deep below the base matching files can lie; None when `**` allows any depth."""
    return None if "**" in rule.pattern else len(rule.pattern)


def codec_suffix(rule: LogRule) -> bytes:
    return CODEC_SUFFIXES[rule.codec]


def matches(rule: LogRule, relative: bytes) -> bool:
    """Tell whether RELATIVE (a path below the base) matches the rule's pattern."""
    text = relative.decode("utf-8", "surrogateescape")
    return pattern_regex(rule.pattern).fullmatch(text) is not None


def owns(rule: LogRule, relative: bytes) -> bool:
    """A file belongs to the rule if it matches, is a compressed copy of a match, or a copy
    rotated from a match (app.log.1, app.log.2.gz, app.log-20261203.gz).

    A rule that rotates leaves its live files to logs.rotate: it owns only their rotated
    copies, so logs.clean's ages and size cap never delete the file a program writes to.
    """
    directory, _, name = relative.rpartition(b"/")
    stem = rotated_stem(name)
    if stem is not None and matches(rule, (directory + b"/" if directory else b"") + stem):
        return True
    if rule.rotates:
        return False
    if matches(rule, relative):
        return True
    return any(
        relative.endswith(suffix) and matches(rule, relative[: -len(suffix)])
        for suffix in CODEC_SUFFIXES.values()
    )


@lru_cache(maxsize=256)
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
