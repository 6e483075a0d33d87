"""The `backup` and `restore` sections of a host's vars, and `restore_checks`.

Everything the backup tasks read is checked here once, at inventory load, so that a typo
(`stor:`) or a retention rule that would delete too much stops every task before the first
dump, instead of backing up to the default directory or pruning with a rule nobody meant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from ..units import format_duration, format_size
from .durations import Age
from .sources import Source, SourceBase, checked_sources
from .types import DeletionAge, Duration, Number, Positive, Ratio, Section, Size, Text, Whole

DEFAULT_STORE = "~/.local/share/maint/backups"
# Restores write private files (umask 077, unique names) here on the restoring host.
DEFAULT_RESTORE_TMP_DIR = "/var/tmp"  # noqa: S108
Codec = Literal["zst", "gz", "none"]
DEFAULT_CODEC: Codec = "zst"
# Levels a user may ask for; zstd's negative (fast) levels and its --ultra range are left out.
LEVELS = {"zst": (1, 19), "gz": (1, 9)}
# Store options under `backup` and the schemes that read them. Every rule of a store's URL and
# options is checked here, at load (and by store_settings for a URL given as a flag); the
# stores trust what they get.
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
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
# The part sizes each service takes: S3 multipart parts, GCS resumable chunks.
PART_SIZES: dict[str, tuple[int, int]] = {"s3": (5 * MIB, 5 * GIB), "gs": (256 * KIB, GIB)}
# S3's are botocore's StorageClass enum (tests/test_settings_backup.py compares the two).
STORAGE_CLASSES: dict[str, tuple[str, ...]] = {
    "s3": (
        "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
        "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
        "FSX_OPENZFS", "FSX_ONTAP",
    ),
    "gs": ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"),
}  # fmt: skip
# backup.prune takes an unfinished write this old for a dead backup's (backups/archive/
# leftovers.py): a running backup's looks the same, only younger.
MIN_INCOMPLETE_GRACE = timedelta(hours=1)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
BUCKET_RULE = "3-222 lowercase letters, digits, '.', '-' or '_', starting and ending alphanumeric"
# Store keys and prefixes: never reaching outside the store's root or prefix.
SEGMENT_RULE = (
    "use '/'-separated names without empty, '.' or '..' parts, backslashes or a leading '/'"
)
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


def _store_or_stores(value: Any) -> Any:
    """One store URL, or a list of them (copies); a list of one is that one store."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a store URL or a list of store URLs, got {value!r}")
    if not value:
        raise ValueError("expected at least one store, got an empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"expected each store to be a URL or directory, got {item!r}")
    seen: dict[str, str] = {}
    for item in value:
        same = seen.setdefault(_store_identity(item), item)
        if same is not item:
            raise ValueError(f"{item!r} is listed twice (as {same!r}): one copy per store")
    return value[0] if len(value) == 1 else tuple(value)


def _store_identity(store: str) -> str:
    """STORE as the backends would open it, for telling two spellings of one store apart."""
    store = store.strip()
    if "://" not in store:
        return "file://" + str(Path(store).expanduser()).rstrip("/")
    return store.rstrip("/")


# One store, or several that each receive every backup (docs/stores.md, "Copies").
Stores = Annotated[
    str | tuple[str, ...],
    BeforeValidator(_store_or_stores),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                         "minItems": 1, "uniqueItems": True}],
         "x-type": "store URL or list of store URLs"}
    ),
]  # fmt: skip


class BackupSettings(Section):
    """Where and how a host's databases are backed up, and which backups are kept."""

    store: Stores = Field(
        DEFAULT_STORE,
        description="where backups go: a directory, file:///path, s3://bucket/prefix or "
        "gs://bucket/prefix; a list of them keeps a copy of every backup in each (one dump "
        "written to all at once, each with its own manifest and retention)",
        examples=[
            "s3://prod-backups/pg",
            "/var/backups/pg",
            ["file:///var/backups/maint", "s3://prod-backups/pg"],
        ],
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
        description="backup.prune removes objects without a manifest and unfinished uploads "
        "once older than this (a running backup's look the same): longer than the longest "
        "backup, at least 1h",
        examples=["2d", "12h"],
    )
    retention: RetentionSettings | None = Field(
        None, description="keep rules for backup.prune and backup.db --prune"
    )
    sources: list[Source] = Field(
        default_factory=list,
        description="what backup.db backs up beside the PostgreSQL databases, each named and "
        "of one kind: sqlite, command, redis or mysql (see docs/backups.md, Sources)",
        examples=[[{"name": "app-local", "sqlite": "/var/lib/app/app.db"}]],
    )
    endpoint_url: Text | None = Field(
        None,
        description="s3: an S3-compatible service's http(s) URL, no credentials (else "
        "AWS_ENDPOINT_URL, else AWS)",
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
        None,
        description="s3 or gs: storage class of new objects (s3: one of S3's, e.g. "
        "STANDARD_IA or GLACIER_IR; gs: STANDARD, NEARLINE, COLDLINE or ARCHIVE)",
        examples=["STANDARD_IA"],
    )
    part_size: Size | None = Field(
        None,
        description="s3 or gs: upload part size (s3 5MiB-5GiB, default 8MiB; gs 256KiB-1GiB, "
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
    def _known_scheme(cls, store: str | tuple[str, ...]) -> str | tuple[str, ...]:
        unknown = [url for url in as_stores(store) if store_scheme(url) not in SCHEMES]
        if unknown:
            raise ValueError("; ".join(_named(url, store_problems(url), store) for url in unknown))
        return store

    @model_validator(mode="wrap")
    @classmethod
    def _store_form(
        cls, data: Any, handler: ModelWrapValidatorHandler[BackupSettings]
    ) -> BackupSettings:
        """The store URL's form (bucket, credentials, prefix), said with every other problem:
        the options are still checked against its scheme (part sizes, storage classes)."""
        store = data.get("store") if isinstance(data, Mapping) else None
        try:
            urls = as_stores(_store_or_stores(store)) if store is not None else ()
        except ValueError:
            return handler(data)  # not a store or a list of them: the field's own error
        if any(store_scheme(url) not in SCHEMES for url in urls):
            return handler(data)  # one _known_scheme refuses
        problems = [_named(url, store_problems(url), store) for url in urls if store_problems(url)]
        if not problems:
            return handler(data)
        errors: list[InitErrorDetails] = [
            {"type": "value_error", "loc": ("store",), "input": store,
             "ctx": {"error": ValueError("; ".join(problems))}}
        ]  # fmt: skip
        try:
            handler(data)
        except ValidationError as exc:
            errors += [
                {"type": error["type"], "loc": error["loc"], "input": error["input"],
                 "ctx": error.get("ctx", {})}
                for error in exc.errors(include_url=False)
            ]  # fmt: skip
        raise ValidationError.from_exception_data(cls.__name__, errors)

    @field_validator("sources", mode="wrap")
    @classmethod
    def _sources_as_written(cls, value: Any, handler: Any) -> list[SourceBase]:
        return checked_sources(value, handler)

    @field_validator("incomplete_grace")
    @classmethod
    def _grace_floor(cls, grace: timedelta) -> timedelta:
        if grace < MIN_INCOMPLETE_GRACE:
            raise ValueError(
                f"expected at least {MIN_INCOMPLETE_GRACE.total_seconds() / 3600:g}h, got "
                f"{format_duration(grace.total_seconds())}: backup.prune would remove a running "
                "backup's unfinished upload once it is older than this"
            )
        return grace

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
        schemes = _schemes_of(info)
        users = STORE_OPTIONS[str(info.field_name)]
        if value is not None and schemes and not schemes & set(users):
            used = " and ".join(f"{scheme}://" for scheme in users)
            have = " or ".join(f"{scheme}://" for scheme in sorted(schemes))
            raise ValueError(f"applies to {used} stores only, not to {have}")
        return value.strip() if isinstance(value, str) else value

    @field_validator("part_size")
    @classmethod
    def _part_size_of_service(cls, size: int | None, info: ValidationInfo) -> int | None:
        for scheme in sorted(_schemes_of(info) & PART_SIZES.keys()):
            low, high = PART_SIZES[scheme]
            if size is not None and not low <= size <= high:
                raise ValueError(
                    f"expected {format_size(low)} to {format_size(high)} for {scheme}:// "
                    f"stores, got {format_size(size)}"
                )
        return size

    @field_validator("storage_class")
    @classmethod
    def _storage_class_of_service(cls, name: str | None, info: ValidationInfo) -> str | None:
        for scheme in sorted(_schemes_of(info) & STORAGE_CLASSES.keys()):
            if name is not None and name not in STORAGE_CLASSES[scheme]:
                raise ValueError(
                    f"expected one of {', '.join(STORAGE_CLASSES[scheme])} for {scheme}:// "
                    f"stores, got {name!r}"
                )
        return name

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint_form(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = _split(url)
        if parts is not None and "@" in parts.netloc:
            raise ValueError(
                "credentials do not belong in the endpoint URL (boto3 reads AWS_ACCESS_KEY_ID "
                "and AWS_SECRET_ACCESS_KEY, or a profile)"
            )
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = url if "@" not in url else "a URL with '@'"
            raise ValueError(f"expected an http:// or https:// URL with a host, got {shown!r}")
        return url

    @field_validator("sse_kms_key_id")
    @classmethod
    def _sse_key(cls, key: str | None, info: ValidationInfo) -> str | None:
        if key is not None and info.data.get("sse") not in ("aws:kms", "aws:kms:dsse"):
            raise ValueError("needs sse: aws:kms (or aws:kms:dsse)")
        return key

    @property
    def stores(self) -> tuple[str, ...]:
        """Every store URL, in the order given: one, or several for copies."""
        return as_stores(self.store)

    def copies(self) -> tuple[BackupSettings, ...]:
        """One settings per store, each with the store options of its own scheme only: what a
        backend opens (an s3 option next to a file store is for the s3 copy)."""
        if isinstance(self.store, str):
            return (self,)
        return tuple(self._copy_for(url) for url in self.store)

    def _copy_for(self, url: str) -> BackupSettings:
        foreign = {
            name: None for name, users in STORE_OPTIONS.items() if store_scheme(url) not in users
        }
        return self.model_copy(update={"store": url, **foreign})

    @property
    def scheme(self) -> str:
        """The store's kind: file, s3 or gs (of the first store; each copy has one)."""
        return store_scheme(self.stores[0])

    @property
    def store_url(self) -> str:
        """The store as the backends read it: a URL, or a directory with `~` expanded (the
        first store's; each copy has one)."""
        store = self.stores[0].strip()
        return store if "://" in store else str(Path(store).expanduser())


def as_stores(store: str | tuple[str, ...]) -> tuple[str, ...]:
    """A `store` value as a tuple of store URLs."""
    return (store,) if isinstance(store, str) else tuple(store)


def _named(url: str, problems: list[str], store: Any) -> str:
    """PROBLEMS of URL, prefixed by the URL when it is one of several stores."""
    text = "; ".join(problems)
    return text if isinstance(store, str) else f"{_without_credentials(url)}: {text}"


def _without_credentials(url: str) -> str:
    """URL as a message may show it: credentials (refused anyway) replaced by '***'."""
    parts = _split(url)
    if parts is None or "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def store_scheme(store: str) -> str:
    """STORE's scheme, lowercase: file for a directory, '' for a malformed URL."""
    if "://" not in store:
        return "file"
    parts = _split(store)
    return parts.scheme.lower() if parts is not None else ""


def _schemes_of(info: ValidationInfo) -> set[str]:
    """The schemes of every store; none when the store itself was refused."""
    store = info.data.get("store")
    return {store_scheme(url) for url in as_stores(store)} if store is not None else set()


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url.strip())
    except ValueError:  # a malformed IPv6 host, say
        return None


def unsafe_segments(segments: Iterable[str]) -> bool:
    """Whether a store key or prefix split at '/' breaks SEGMENT_RULE."""
    return any(s in ("", ".", "..") or "\\" in s or "\0" in s for s in segments)


def store_problems(store: str) -> list[str]:
    """What is wrong with a store URL or directory, in words that never repeat a credential."""
    scheme = store_scheme(store)
    if scheme not in SCHEMES:
        shown = f"{scheme!r}" if scheme else "in a malformed URL"
        return [f"unknown store scheme {shown}: use file://, s3://, gs:// or a directory"]
    parts = _split(store) if "://" in store else None
    if parts is None:
        return []
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            return ["use file:///absolute/path (no host, query or fragment)"]
        return []
    problems = []
    if "@" in parts.netloc:
        problems.append("credentials do not belong in the store URL")
    if parts.query or parts.fragment:
        problems.append("the store URL takes no '?query' or '#fragment'")
    bucket = parts.netloc.rpartition("@")[2]  # as written: .hostname would lowercase it
    if not _BUCKET.fullmatch(bucket):
        problems.append(f"bucket name {bucket!r} is not valid: {BUCKET_RULE}")
    prefix = parts.path.strip("/")
    if prefix and unsafe_segments(prefix.split("/")):
        problems.append(f"invalid store prefix {prefix!r}: {SEGMENT_RULE}")
    return problems


def store_settings(
    url: Any, options: Mapping[str, Any] | None = None
) -> tuple[BackupSettings | None, list[str]]:
    """The settings of a store named outside the inventory (restore.db --store, a test): URL
    and the store options of OPTIONS (other keys are ignored), checked by the rules of an
    inventory's `backup`; or None and every problem, each option by name."""
    from pydantic import ValidationError

    from .problems import key_path, problems_of

    values = {
        name: value
        for name, value in (options or {}).items()
        if name in STORE_OPTIONS and value is not None
    }
    try:
        return BackupSettings.model_validate({"store": url, **values}), []
    except ValidationError as exc:
        return None, [
            text if loc == ("store",) else f"option {key_path(loc)!r}: {text}"
            for loc, text in problems_of(exc, BackupSettings)
        ]


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
