"""The `logs` section: cleanup rules, each a glob of files and what happens to them when.

A rule's glob is split into a fixed base directory and a pattern below it. Everything the rule
may touch lies under that base, so a glob without one, or whose base is the root or a top-level
system directory, is refused here with the rest of the inventory, before anything runs.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .types import DeletionAge, Duration, Section, Size

# Directories whose contents belong to the system: a rule must name something below them.
SYSTEM_DIRECTORIES = frozenset(
    {
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
        "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",  # noqa: S108 (refused, not used)
    }
)  # fmt: skip
DEFAULT_MIN_AGE = timedelta(minutes=10)
_GLOB_CHARS = frozenset("*?[")


def split_glob(path: str) -> tuple[str, tuple[str, ...]]:
    """Split an absolute glob into its fixed base directory and the pattern below it.

    Raise ValueError when the glob is relative, climbs with `..`, names a directory (trailing
    slash), or has no fixed directory part below the root or a system directory.
    """
    if not path.startswith("/"):
        raise ValueError(f"path {path!r} must be absolute")
    if path.endswith("/"):
        raise ValueError(f"path {path!r} names a directory; give a glob of files")
    parts = [part for part in path.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(f"path {path!r} must not contain '.' or '..' components")
    fixed = 0
    while fixed < len(parts) - 1 and not _GLOB_CHARS.intersection(parts[fixed]):
        fixed += 1
    base = "/" + "/".join(parts[:fixed])
    if base == "/":
        raise ValueError(
            f"path {path!r} has no fixed directory part: name the directory its files are in"
        )
    if base in SYSTEM_DIRECTORIES:
        raise ValueError(
            f"path {path!r} works directly in the system directory {base}: "
            "name the directory below it that holds the logs"
        )
    return base, tuple(parts[fixed:])


class LogRule(Section):
    """One rule: the files a glob matches, compressed, deleted or capped by age and size."""

    path: str = Field(
        description="an absolute glob of log files below a fixed directory; `*`, `?` and "
        "`[...]` stay within one directory level, `**` spans any number of them",
        examples=["/var/log/postgresql/*.log", "/srv/app/logs/**/*.log"],
    )
    compress_after: DeletionAge | None = Field(
        None,
        description="compress files older than this in place (mtime kept); "
        "an age such as 1d or 12h: a bare number or a bare m is refused",
        examples=["1d"],
    )
    delete_after: DeletionAge | None = Field(
        None,
        description="delete files (compressed copies included) older than this; an age such "
        "as 14d, 12mo or 1y: a bare number or a bare m is refused as ambiguous",
        examples=["14d", "3mo"],
    )
    max_total_size: Size | None = Field(
        None,
        description="after the age rules, delete the oldest files until the rule's files "
        "fit in this size",
        examples=["2GB", "500MiB"],
    )
    min_age: Duration = Field(
        DEFAULT_MIN_AGE,
        description="files modified more recently than this are never touched, whatever "
        "the other rules say (a log being written); m is minutes, a bare number seconds",
        examples=["10min", "1h"],
    )
    codec: Literal["gzip", "zstd"] = Field(
        "gzip", description="the compressor: gzip, or zstd when installed on the host"
    )

    @field_validator("path", mode="before")
    @classmethod
    def _safe_glob(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected a glob such as /var/log/app/*.log, got {value!r}")
        split_glob(value.strip())
        return value.strip()

    @model_validator(mode="after")
    def _does_something(self) -> LogRule:
        ages = (self.compress_after, self.delete_after)
        if ages == (None, None) and self.max_total_size is None:
            raise ValueError(
                f"rule for {self.path!r} does nothing: set compress_after, delete_after "
                "or max_total_size"
            )
        return self

    @cached_property
    def base(self) -> str:
        """The fixed directory every file of the rule lies under."""
        return split_glob(self.path)[0]

    @cached_property
    def pattern(self) -> tuple[str, ...]:
        """The glob's components below the base."""
        return split_glob(self.path)[1]
