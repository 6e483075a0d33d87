"""Tasks of the `backup` namespace: backup.db, backup.globals, backup.list, backup.prune.

The procedures are imported inside each plan (see common.py's docstring on start-up time).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ..errors import ConfigError
from .spec import Flag, Plan, TaskSpec, collection, dry_run

KEEP_FLAGS = (
    Flag("keep_last", "keep the N newest backups"),
    Flag("keep_hourly", "keep the newest backup of each of the last N hours that have one"),
    Flag("keep_daily", "keep the newest backup of each of the last N days that have one"),
    Flag("keep_weekly", "keep the newest backup of each of the last N ISO weeks that have one"),
    Flag("keep_monthly", "keep the newest backup of each of the last N months that have one"),
    Flag("keep_yearly", "keep the newest backup of each of the last N years that have one"),
    Flag("keep_within", "keep every backup within this age of the newest (e.g. 30d, 12mo, 1y)"),
)
SOURCE_FLAG = Flag(
    "source",
    "only this backup.sources entry (repeatable; no PostgreSQL database unless --database "
    "names one too)",
    repeatable=True,
)


def _validate(host: Any, options: Any) -> None:
    """Refuse what only the store backend can check (bucket names, endpoints, part sizes)
    before any host starts work; the vars themselves were checked when the inventory loaded."""
    from backups.stores.host import open_host_store

    open_host_store(host)


def _validate_db(host: Any, options: Any) -> None:
    """As _validate, and with --prune a keep policy that is missing, and a --source that is
    none of the host's, before any dump."""
    from backups.tasks.prune import policy_for
    from backups.tasks.source_backup import chosen_sources

    _validate(host, options)
    chosen_sources(host, options.sources)
    if options.prune:
        policy_for(host, {})


def _validate_prune(host: Any, options: Any) -> None:
    """As _validate_sources, and a keep policy that is empty or bad once the flags apply."""
    from backups.tasks.prune import policy_for

    _validate_sources(host, options)
    policy_for(host, dict(options.overrides))


def _db(flags: SimpleNamespace) -> Plan:
    from backups.tasks.backup import BackupOptions, backup_host

    tables = tuple(flags.table or ())
    if tables and flags.source:
        raise ConfigError("--table backs up PostgreSQL tables: it cannot go with --source")
    if any(not name.strip(". ") for name in tables):
        raise ConfigError("--table: expected a table name, got an empty one")
    if tables and flags.prune:  # it would prune the database's full backups, not these
        raise ConfigError("--prune goes with full backups: prune partial ones with backup.prune")
    options = BackupOptions(
        databases=tuple(flags.database or ()), sources=tuple(flags.source or ()),
        prune=flags.prune, dry_run=flags.dry_run, tables=tables,
    )  # fmt: skip
    return Plan(backup_host, options, validate=_validate_db)


def _globals(flags: SimpleNamespace) -> Plan:
    from backups.tasks.globals import backup_globals

    return Plan(backup_globals, validate=_validate)


def _validate_sources(host: Any, options: Any) -> None:
    """As _validate, and a --source that is none of the host's (with a did-you-mean)."""
    from backups.tasks.source_backup import chosen_sources

    _validate(host, options)
    chosen_sources(host, options.sources)


def _list(flags: SimpleNamespace) -> Plan:
    from backups.tasks.listing import ListOptions, list_host

    return Plan(
        list_host,
        ListOptions(database=flags.database, sources=tuple(flags.source or ())),
        validate=_validate_sources,
        columns=("database", "kind", "time", "age", "size", "codec", "drill", "key"),
    )


def _prune(flags: SimpleNamespace) -> Plan:
    from backups.tasks.prune import PruneOptions, prune_host

    from ..settings.backup import RetentionSettings
    from ..settings.flags import checked_flags

    given = {flag.name: getattr(flags, flag.name) for flag in KEEP_FLAGS}
    overrides = {name: value for name, value in given.items() if value not in (None, "")}
    checked_flags(RetentionSettings, overrides)
    options = PruneOptions(
        dry_run=flags.dry_run, overrides=tuple(overrides.items()),
        sources=tuple(flags.source or ()),
    )  # fmt: skip
    return Plan(prune_host, options, validate=_validate_prune)


SPECS = (
    TaskSpec(
        "backup.db",
        """Back up each database with pg_dump, and each backup.sources entry, through zstd
        into the backup store.

        The manifest (size, sha256, row counts from the dump's own snapshot) is written last;
        a failed dump leaves no object behind.
        """,
        flags=(
            Flag(
                "database",
                "back up only this database (repeatable; default: postgres.databases, "
                "else every connectable database)",
                repeatable=True,
            ),
            SOURCE_FLAG,
            Flag("prune", "apply the retention rules right after each successful backup", False),
            dry_run("show what would be backed up where, and do nothing"),
            Flag(
                "table",
                "back up only this table (repeatable; schema.table or a plain name): a partial "
                "backup, kept as DATABASE~partial and never counted as the database's backup",
                repeatable=True,
            ),
        ),
        plan=_db,
    ),
    TaskSpec(
        "backup.globals",
        "Back up roles and tablespaces (pg_dumpall --globals-only) beside the database dumps.",
        plan=_globals,
    ),
    TaskSpec(
        "backup.list",
        "List complete backups per host and database or source: kind, time, age, size, codec, key.",
        flags=(Flag("database", "only this database's backups"), SOURCE_FLAG),
        plan=_list,
    ),
    TaskSpec(
        "backup.prune",
        """Apply restic-style keep rules (backup.retention vars, flags on top) per database.

        Never removes the newest complete backup; refuses an empty policy.
        """,
        flags=(
            dry_run("list what would be removed and why each survivor stays"),
            Flag("source", "only this source's backups (repeatable)", repeatable=True),
            *KEEP_FLAGS,
        ),
        plan=_prune,
    ),
)

namespace = collection("backup", SPECS)
