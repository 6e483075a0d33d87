"""A rotation rule as logs.rotate applies it, whether the inventory wrote it or a logrotate
file on the host did: the same shape for both, so the planner knows one kind of rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..settings.durations import Age
from ..settings.logs import CreateSpec, LogRule, split_glob

Cadence = Literal["daily", "weekly", "monthly"]
COMPRESS_SUFFIXES = {"gz": b".gz", "zstd": b".zst"}
# Names a rotation gives: app.log.3, app.log.3.gz, app.log-20261203, app.log-20261203.zst.
ROTATED_NAME = re.compile(rb"(?s)(.+?)(?:\.([0-9]+)|-([0-9]{8}))(\.gz|\.zst)?")


@dataclass(frozen=True)
class Glob:
    """One glob of a rule: its fixed base directory and the pattern below it."""

    text: str
    base: str
    pattern: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Glob:
        """Raise ValueError for a glob logs.clean would refuse (no base, system dir, ...)."""
        base, pattern = split_glob(text)
        return cls(text, base, pattern)


@dataclass(frozen=True)
class RotateRule:
    """What logs.rotate does to the live files of some globs, and where the rule was written.

    SHARED_SCRIPTS runs POSTROTATE once for the rule (with the globs as its argument) rather
    than once per rotated file; inventory rules always share, imported ones say so.
    """

    source: str  # 'logs[0]' or '/etc/logrotate.d/app:3' (file and line of the block)
    globs: tuple[Glob, ...]
    keep: int
    cadence: Cadence | None = None
    size: int | None = None
    minsize: int | None = None
    maxsize: int | None = None
    max_age: Age | None = None
    compress: Literal["gz", "zstd"] | None = None
    delay_compress: bool = False
    copytruncate: bool = False
    create: CreateSpec | None = None
    missing_ok: bool = False
    not_if_empty: bool = False
    date_ext: bool = False
    postrotate: str | None = None
    shared_scripts: bool = True

    @property
    def suffix(self) -> bytes:
        """The compressed files' suffix; empty when the rule does not compress."""
        return COMPRESS_SUFFIXES[self.compress] if self.compress else b""

    @property
    def label(self) -> str:
        """The rule in reports: its globs, space-separated as logrotate writes them."""
        return " ".join(glob.text for glob in self.globs)


def from_setting(rule: LogRule, index: int) -> RotateRule:
    """The rotation part of an inventory rule (one with `rotate` or `size`)."""
    return RotateRule(
        source=f"logs[{index}]",
        globs=(Glob(rule.glob, rule.base, rule.pattern),),
        keep=rule.keep or 0,
        cadence=rule.rotate,
        size=rule.size,
        minsize=rule.minsize,
        maxsize=rule.maxsize,
        max_age=rule.delete_after,
        compress=rule.compress,
        delay_compress=rule.delay_compress,
        copytruncate=rule.copytruncate,
        create=rule.create,
        missing_ok=rule.missing_ok,
        not_if_empty=rule.not_if_empty,
        date_ext=rule.date_ext,
        postrotate=rule.postrotate,
    )


def rotated_stem(name: bytes) -> bytes | None:
    """The live name a rotated NAME was made from (b'app.log' for b'app.log.2.gz'), or None."""
    match = ROTATED_NAME.fullmatch(name)
    return match.group(1) if match else None
