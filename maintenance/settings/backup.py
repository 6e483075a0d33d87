"""The `backup` and `restore` sections of a host's vars, and `restore_checks`.

Everything the backup tasks read is checked here once, at inventory load, so that a typo
(`stor:`) or a retention rule that would delete too much stops every task before the first
dump, instead of backing up to the default directory or pruning with a rule nobody meant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from .durations import Age
from .types import DeletionAge, Duration, Number, Positive, Ratio, Section, Size, Text, Whole

DEFAULT_STORE = "~/.local/share/maint/backups"
# Restores write private files (umask 077, unique names) here on the restoring host.
DEFAULT_RESTORE_TMP_DIR = "/var/tmp"  # noqa: S108
Codec = Literal["zst", "gz", "none"]
DEFAULT_CODEC: Codec = "zst"
# Levels a user may ask for; zstd's negative (fast) levels and its --ultra range are left out.
LEVELS = {"zst": (1, 19), "gz": (1, 9)}
# Store options under `backup` and the schemes that read them (the stores check their values).
STORE_OPTIONS: dict[str, tuple[str, ...]] = {
    "endpoint_url": ("s3",),
    "region": ("s3",),
    "sse": ("s3",),
    "sse_kms_key_id": ("s3",),
    "kms_key_name": ("gs",),
    "project": ("gs",),
    "storage_class": ("s3", "gs"),
    "part_size": ("s3", "gs"),
    "max_attempts": ("s3",),
    "retry_timeout": ("gs",),
}
SCHEMES = ("file", "s3", "gs")
UNLIMITED = -1
EMPTY_POLICY = (
    "no keep rule is set (keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, "
    "keep_yearly or keep_within); an empty policy would delete every backup but the newest"
)
# Retention context for rules given as flags: they may be partial (the vars hold the rest).
PARTIAL = {"partial": True}

KeepCount = Annotated[Whole, Field(ge=UNLIMITED)]


def _count(what: str) -> Any:
    return Field(
        None,
        description=f"keep the newest backup of each of the last N {what} that have one; "
        "-1 = one per bucket without limit, 0 = off",
        examples=[7],
    )


class RetentionSettings(Section):
    """restic's `forget` keep rules, per host and database (see docs/retention.md)."""

    keep_last: KeepCount | None = Field(
        None, description="keep the N newest backups; -1 = all, 0 = off", examples=[3]
    )
    keep_hourly: KeepCount | None = _count("hours")
    keep_daily: KeepCount | None = _count("days")
    keep_weekly: KeepCount | None = _count("ISO weeks")
    keep_monthly: KeepCount | None = _count("months")
    keep_yearly: KeepCount | None = _count("years")
    keep_within: DeletionAge | None = Field(
        None,
        description="keep every backup younger than this, measured from the newest backup; "
        "mo and y are calendar months and years (restic's rollover); whole hours at least",
        examples=["30d", "12mo", "1y6mo", "36h"],
    )

    @field_validator("keep_within")
    @classmethod
    def _whole_hours(cls, within: Age | None) -> Age | None:
        if within is not None and within.seconds % 3600:
            raise ValueError(f"restic counts keep_within in whole hours, got {within.text!r}")
        return within

    @model_validator(mode="after")
    def _not_empty(self, info: ValidationInfo) -> RetentionSettings:
        if not (info.context or {}).get("partial") and self.is_empty():
            raise ValueError(EMPTY_POLICY)
        return self

    def is_empty(self) -> bool:
        """True when no rule is on: such a policy would keep nothing but the newest backup."""
        counts = (self.keep_last, self.keep_hourly, self.keep_daily, self.keep_weekly,
                  self.keep_monthly, self.keep_yearly)  # fmt: skip
        return not any(counts) and self.keep_within is None


class BackupSettings(Section):
    """Where and how a host's databases are backed up, and which backups are kept."""

    store: Text = Field(
        DEFAULT_STORE,
        description="where backups go: a directory, file:///path, s3://bucket/prefix or "
        "gs://bucket/prefix",
        examples=["s3://prod-backups/pg", "gs://prod-backups/pg", "/var/backups/pg"],
    )
    codec: Codec = Field(
        DEFAULT_CODEC, description="compression of the stored dump: zst, gz or none"
    )
    level: Positive | None = Field(
        None, description="compression level: zst 1-19, gz 1-9 (default: the codec's own)"
    )
    exact_count_max_size: Size = Field(
        "2GB",
        validate_default=True,
        description="tables up to this size get an exact row count in the manifest; larger "
        "ones an estimate",
        examples=["2GB", "500MB"],
    )
    min_size_ratio: Ratio = Field(
        0.5,
        description="flag a backup smaller than this fraction of the previous one (0-1)",
        examples=[0.5],
    )
    incomplete_grace: Duration = Field(
        "2d",
        validate_default=True,
        description="backup.prune removes objects without a manifest once older than this "
        "(a running backup looks the same)",
        examples=["2d", "12h"],
    )
    retention: RetentionSettings | None = Field(
        None, description="keep rules for backup.prune and backup.db --prune"
    )
    endpoint_url: Text | None = Field(
        None,
        description="s3: an S3-compatible service's URL (else AWS_ENDPOINT_URL, else AWS)",
        examples=["http://minio.internal:9000"],
    )
    region: Text | None = Field(None, description="s3: the bucket's region")
    sse: Literal["AES256", "aws:kms", "aws:kms:dsse"] | None = Field(
        None, description="s3: server-side encryption"
    )
    sse_kms_key_id: Text | None = Field(None, description="s3: KMS key of sse: aws:kms")
    kms_key_name: Text | None = Field(None, description="gs: customer-managed KMS key")
    project: Text | None = Field(None, description="gs: Google Cloud project")
    storage_class: Text | None = Field(
        None, description="s3 or gs: storage class of new objects", examples=["STANDARD_IA"]
    )
    part_size: Size | None = Field(
        None,
        description="s3 or gs: upload part size (s3 5MiB-5GiB, default 8MiB; gs up to 1GiB, "
        "default 16MiB)",
        examples=["16MiB"],
    )
    max_attempts: Annotated[Positive, Field(le=20)] | None = Field(
        None, description="s3: attempts per request (1-20, default 5)"
    )
    retry_timeout: Annotated[Positive, Field(le=3600)] | None = Field(
        None, description="gs: seconds of retries per request (1-3600, default 120)"
    )

    @field_validator("store")
    @classmethod
    def _known_scheme(cls, store: str) -> str:
        if _scheme(store) not in SCHEMES:
            raise ValueError(
                f"unknown store scheme {_scheme(store)!r}: use file://, s3://, gs:// or a directory"
            )
        return store

    @field_validator("level")
    @classmethod
    def _level_of_codec(cls, level: int | None, info: ValidationInfo) -> int | None:
        codec = info.data.get("codec")
        if level is None or codec is None:
            return level
        if codec == "none":
            raise ValueError("codec 'none' takes no level")
        low, high = LEVELS[codec]
        if not low <= level <= high:
            raise ValueError(f"expected a {codec} level from {low} to {high}, got {level}")
        return level

    @field_validator(*STORE_OPTIONS)
    @classmethod
    def _option_of_scheme(cls, value: Any, info: ValidationInfo) -> Any:
        store = info.data.get("store")
        users = STORE_OPTIONS[str(info.field_name)]
        if value is not None and store is not None and _scheme(store) not in users:
            used = " and ".join(f"{scheme}://" for scheme in users)
            raise ValueError(f"applies to {used} stores only, not to {_scheme(store)}://")
        return value

    @field_validator("sse_kms_key_id")
    @classmethod
    def _sse_key(cls, key: str | None, info: ValidationInfo) -> str | None:
        if key is not None and info.data.get("sse") not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError("needs sse: aws:kms (or aws:kms:dsse)")
        return key

    @property
    def store_url(self) -> str:
        """The store as open_store takes it: a URL, or a directory with `~` expanded."""
        store = self.store.strip()
        return store if "://" in store else str(Path(store).expanduser())

    @property
    def store_options(self) -> dict[str, Any]:
        """The store options that are set, as open_store takes them."""
        return {
            name: getattr(self, name) for name in STORE_OPTIONS if getattr(self, name) is not None
        }


def _scheme(store: str) -> str:
    return urlsplit(store.strip()).scheme.lower() if "://" in store else "file"


class RestoreSettings(Section):
    """How restore.verify drills and restore.db restores behave on the restoring host."""

    tmp_dir: Text = Field(
        DEFAULT_RESTORE_TMP_DIR,
        description="directory on the restoring host for the fetched dump (private files)",
        examples=[DEFAULT_RESTORE_TMP_DIR, "/srv/restore-tmp"],
    )
    count_tolerance: Ratio = Field(
        0.1,
        description="how far (a fraction, 0-1) a restored table's row count may be from an "
        "estimated count in the manifest (restore.verify, restore.db); exact counts must match",
        examples=[0.1],
    )
    keep_failed: StrictBool = Field(
        False, description="restore.verify: keep the scratch database of a failed drill"
    )


class RestoreCheck(Section):
    """One of the user's SQL checks run in a restored database by restore.verify."""

    name: Text | None = Field(None, description="shown in reports (default: 'check N')")
    sql: Text = Field(
        description="a query returning one value: true, or a number of at least `min`",
        examples=["SELECT count(*) FROM orders WHERE created_at > now() - interval '2 days'"],
    )
    min: Number | None = Field(None, description="the least passing number (default 1)")
