"""The `logs` section: rules, each a glob of files and what happens to them when.

A rule's glob is split into a fixed base directory and a pattern below it. Everything the rule
may touch lies under that base, so a glob without one, or whose base is the root or a top-level
system directory, is refused here with the rest of the inventory, before anything runs.

A rule cleans (`compress_after`, `delete_after`, `max_total_size`: logs.clean), rotates live
files as logrotate does (`rotate` or `size`: logs.rotate, which leaves the age and size parts
to logs.clean), or is a `logrotate:` entry naming a logrotate file on the host, which
logs.rotate reads when it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from .types import Count, DeletionAge, Duration, Section, Size, Text

# Directories whose contents belong to the system: a rule must name something below them.
SYSTEM_DIRECTORIES = frozenset(
    {
        "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
        "/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var",  # noqa: S108 (refused, not used)
    }
)  # fmt: skip
DEFAULT_MIN_AGE = timedelta(minutes=10)
_GLOB_CHARS = frozenset("*?[")
MAX_KEEP = 10_000  # logrotate's `rotate` beyond this is a typo, not a retention
# A user or group as chown takes it: a name (useradd's rule, with Samba's trailing $) or an id.
_ACCOUNT = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?|[0-9]{1,10})")
# Keys that only mean something in a rule that rotates.
ROTATION_KEYS = (
    "keep", "compress", "delay_compress", "copytruncate", "create", "missing_ok",
    "not_if_empty", "date_ext", "postrotate", "maxsize", "minsize",
)  # fmt: skip


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


@dataclass(frozen=True)
class CreateSpec:
    """logrotate's `create MODE OWNER GROUP`: what the new live file gets after a rotation.

    A part left out (None) is taken from the file just rotated, as logrotate does.
    """

    mode: int | None = None
    owner: str | None = None
    group: str | None = None

    def words(self) -> str:
        return self.as_written() or "as the rotated file"

    def as_written(self) -> str:
        """'0644 app app' as the inventory writes it; empty for `create: true`."""
        parts = [f"{self.mode:04o}" if self.mode is not None else None, self.owner, self.group]
        return " ".join(part for part in parts if part is not None)


def parse_create(text: str) -> CreateSpec:
    """CreateSpec from 'MODE [OWNER [GROUP]]', or 'OWNER GROUP' as logrotate also takes; a
    first word of digits is the mode (so a numeric owner needs the mode before it).

    Raise ValueError naming what is wrong: a mode that is not octal up to 07777, an owner or
    group that is neither a user name nor a numeric id, or too many words.
    """
    words = text.split()
    if len(words) > 3:
        raise ValueError(f"expected 'MODE OWNER GROUP' such as '0644 app app', got {text!r}")
    mode = None
    if words and words[0].isdigit():
        word = words.pop(0)
        if not re.fullmatch(r"[0-7]{1,5}", word) or int(word, 8) > 0o7777:
            raise ValueError(f"mode {word!r} is not an octal file mode from 0000 to 7777")
        mode = int(word, 8)
    for word in words:
        if not _ACCOUNT.fullmatch(word):
            raise ValueError(f"{word!r} is neither a user or group name nor a numeric id")
    owner, group = [*words, None, None][:2]
    return CreateSpec(mode, owner, group)


def _create(value: object) -> object:
    if value is True:
        return CreateSpec()
    if value is False or value is None:
        return None
    if isinstance(value, CreateSpec):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected 'MODE OWNER GROUP' such as '0644 app app', got {value!r}")
    return parse_create(value)


Create = Annotated[
    CreateSpec | None,
    WithJsonSchema(
        {"x-type": "'MODE OWNER GROUP' or true", "anyOf": [{"type": "string"}, {"type": "boolean"}]}
    ),
]


class LogRule(Section):
    """One rule: the files a glob matches, compressed, deleted or capped by age and size,
    or rotated while live as logrotate does; or a logrotate file on the host to import."""

    path: str | None = Field(
        None,
        description="an absolute glob of log files below a fixed directory; `*`, `?` and "
        "`[...]` stay within one directory level, `**` spans any number of them",
        examples=["/var/log/postgresql/*.log", "/srv/app/logs/**/*.log"],
    )
    logrotate: Text | None = Field(
        None,
        description="instead of path: a logrotate configuration file on the host whose "
        "rules logs.rotate imports when it runs (directives it does not support are refused)",
        examples=["/etc/logrotate.d/app"],
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
    rotate: Literal["daily", "weekly", "monthly"] | None = Field(
        None,
        description="logs.rotate renames the live files at this cadence (once per day, week "
        "or month however often it runs), as logrotate's daily, weekly, monthly",
    )
    size: Size | None = Field(
        None,
        gt=0,
        description="logs.rotate renames a live file once it reaches this size, whatever the "
        "cadence (logrotate's size; instead of rotate)",
        examples=["100MiB"],
    )
    maxsize: Size | None = Field(
        None,
        gt=0,
        description="with rotate: also rotate a live file bigger than this before its time",
    )
    minsize: Size | None = Field(
        None, description="with rotate: skip a live file smaller than this when its time comes"
    )
    keep: Count | None = Field(
        None,
        le=MAX_KEEP,
        description="how many rotated files to keep (logrotate's rotate N); 0 deletes a "
        "file as soon as it is rotated",
        examples=[30],
    )
    compress: Literal["gz", "zstd"] | None = Field(
        None, description="compress rotated files with gzip (gz) or zstd; unset: not compressed"
    )
    delay_compress: bool = Field(
        False, description="leave the newest rotated file (.1) plain until the next rotation"
    )
    copytruncate: bool = Field(
        False,
        description="copy the live file, then truncate it in place (for programs that cannot "
        "reopen their log; lines written between the two are lost)",
    )
    create: Create = Field(
        None,
        description="after renaming the live file, create an empty one with this mode, owner "
        "and group ('0644 app app'); true: the rotated file's",
        examples=["0644 app app"],
    )
    missing_ok: bool = Field(False, description="a glob that matches no file is not an error")
    not_if_empty: bool = Field(
        False, description="never rotate an empty live file, not even with --force"
    )
    date_ext: bool = Field(
        False,
        description="name rotated files app.log-YYYYMMDD (the host's date) instead of app.log.1",
    )
    postrotate: Text | None = Field(
        None,
        description="a shell command run on the host once after the rule's files rotate "
        "(logrotate's postrotate with sharedscripts); its exit status is reported",
        examples=["systemctl reload app"],
    )

    @field_validator("create", mode="before")
    @classmethod
    def _create_spec(cls, value: object) -> object:
        return _create(value)

    @field_validator("path", mode="before")
    @classmethod
    def _safe_glob(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"expected a glob such as /var/log/app/*.log, got {value!r}")
        split_glob(value.strip())
        return value.strip()

    @field_validator("logrotate", mode="after")
    @classmethod
    def _config_file(cls, value: str | None) -> str | None:
        if value is not None and (
            not value.startswith("/") or ".." in value.split("/") or value.endswith("/")
        ):
            raise ValueError(f"expected the absolute path of a logrotate file, got {value!r}")
        return value

    @model_validator(mode="after")
    def _does_something(self) -> LogRule:
        given = self.model_fields_set - {"path", "logrotate"}
        if self.logrotate is not None:
            if self.path is not None or given:
                extra = sorted(given | ({"path"} if self.path is not None else set()))
                raise ValueError(
                    f"a logrotate entry imports its rules from {self.logrotate} and takes no "
                    f"other key (got {', '.join(extra)})"
                )
            return self
        if self.path is None:
            raise ValueError("a rule needs path (a glob of log files) or logrotate (a file)")
        if self.rotates:
            self._check_rotation(given)
            return self
        stray = [key for key in ROTATION_KEYS if key in given]
        if stray:
            raise ValueError(
                f"rule for {self.path!r}: {stray[0]} only applies to a rule that rotates: "
                "set rotate (daily, weekly, monthly) or size"
            )
        ages = (self.compress_after, self.delete_after)
        if ages == (None, None) and self.max_total_size is None:
            raise ValueError(
                f"rule for {self.path!r} does nothing: set compress_after, delete_after "
                "or max_total_size (or rotate, to rotate live files)"
            )
        return self

    def _check_rotation(self, given: set[str]) -> None:
        """A rotating rule's keys must agree: one trigger, one way to compress, one way to
        hand the live file back, and a number of rotated files to keep."""
        where = f"rule for {self.path!r}"
        if self.rotate is not None and self.size is not None:
            raise ValueError(
                f"{where}: size rotates by size alone whatever the cadence; set rotate with "
                "maxsize or minsize, or size without rotate"
            )
        if self.rotate is None and {"maxsize", "minsize"} & given:
            raise ValueError(f"{where}: maxsize and minsize refine a cadence: set rotate too")
        if self.maxsize is not None and self.minsize is not None and self.minsize > self.maxsize:
            raise ValueError(f"{where}: minsize is bigger than maxsize")
        if self.keep is None:
            raise ValueError(
                f"{where}: say how many rotated files to keep (keep: N; 0 deletes them at once)"
            )
        if self.compress_after is not None or "codec" in given:
            raise ValueError(
                f"{where}: a rotating rule compresses what it rotates: use compress: gz or "
                "zstd (and delay_compress), not compress_after or codec"
            )
        if self.delay_compress and self.compress is None:
            raise ValueError(f"{where}: delay_compress needs compress (gz or zstd)")
        if self.copytruncate and self.create is not None:
            raise ValueError(
                f"{where}: copytruncate and create are two ways to hand the live file back: "
                "choose one"
            )

    @property
    def rotates(self) -> bool:
        """Whether logs.rotate renames this rule's live files."""
        return self.rotate is not None or self.size is not None

    @property
    def glob(self) -> str:
        """The rule's glob; only a `logrotate:` entry has none."""
        if self.path is None:
            raise ValueError(f"the logrotate entry {self.logrotate} has no glob of its own")
        return self.path

    @cached_property
    def base(self) -> str:
        """The fixed directory every file of the rule lies under."""
        return split_glob(self.glob)[0]

    @cached_property
    def pattern(self) -> tuple[str, ...]:
        """The glob's components below the base."""
        return split_glob(self.glob)[1]
