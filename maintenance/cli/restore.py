"""Tasks of the `restore` namespace: restore.verify (drills) and restore.db (a real restore)."""

from __future__ import annotations

from types import SimpleNamespace

from ..errors import ConfigError
from .spec import Flag, Plan, TaskSpec, collection, dry_run

JOBS = Flag("jobs", "parallel pg_restore jobs (default 2)", 2)


def _verify(flags: SimpleNamespace) -> Plan:
    from backups.tasks import drill

    return Plan(
        drill.verify_host,
        validate=drill.validate,
        make_options=lambda loaded: drill.DrillOptions(
            inventory=loaded, target=flags.target, backup=flags.backup, database=flags.database,
            sources=tuple(flags.source or ()), keep=flags.keep, jobs=int(flags.jobs),
            limit=flags.limit,
        ),
    )  # fmt: skip


def _tables(names: list[str] | None) -> tuple[str, ...]:
    if any(not name.strip(". ") for name in names or ()):
        raise ConfigError("--table: expected a table name, got an empty one")
    return tuple(names or ())


def _db(flags: SimpleNamespace) -> Plan:
    from backups.tasks.restore import RestoreOptions, restore_target_host, validate_restore

    return Plan(
        restore_target_host,
        validate=validate_restore,
        limit=flags.target,
        forks=1,
        make_options=lambda loaded: RestoreOptions(
            backup=flags.backup, target=flags.target, database=flags.database,
            store=flags.store, force=flags.force, dry_run=flags.dry_run, yes=flags.yes,
            jobs=int(flags.jobs), inventory=loaded, tables=_tables(flags.table),
            safety_backup=flags.safety_backup,
        ),
    )  # fmt: skip


SPECS = (
    TaskSpec(
        "restore.verify",
        """Restore drill: prove the newest backups restore, in a scratch database on the target.

        Fetches the backup checking its sha256, restores it with pg_restore, compares row counts
        with the manifest, runs restore_checks, records <key>.verify.json and drops the scratch
        database. --limit selects the source hosts; the target is looked up in the whole
        inventory.
        """,
        flags=(
            Flag(
                "target",
                "host to restore on (default: the source's restore_target var); "
                "the source itself only when named here",
            ),
            Flag("backup", "'latest' (default) or a backup key as backup.list shows it", "latest"),
            Flag("database", "drill only this database"),
            Flag(
                "source",
                "drill only this backup.sources entry (repeatable; no PostgreSQL database "
                "unless --database names one too)",
                repeatable=True,
            ),
            Flag("keep", "keep the scratch database after the drill (reported by name)", False),
            JOBS,
        ),
        plan=_verify,
    ),
    TaskSpec(
        "restore.db",
        """Restore a backup into DATABASE on TARGET: checksum first, counts and checks after.

        --backup latest is resolved to the newest complete backup and said first. Refuses a
        non-empty database without --force, and with --force backs it up first (the safety
        backup, DATABASE~safety); asks for confirmation unless --yes. restore_checks run
        after, as restore.verify runs them. Globals backups are replayed with psql.
        """,
        common=("inventory", "json"),
        flags=(
            Flag(
                "backup",
                "the backup's key, as backup.list shows it; 'latest' (the newest complete backup "
                "of DATABASE from TARGET) or HOST/DATABASE/latest (required)",
                required=True,
            ),
            Flag("target", "host to restore on (required)", required=True),
            Flag(
                "database",
                "database to restore into; for a backup.sources backup, where to: a file's "
                "absolute path (sqlite, redis) or a command source's $MAINT_TARGET (required)",
                required=True,
            ),
            Flag(
                "store",
                "store URL to read from (default: the backup host's backup.store, "
                "else the target's)",
            ),
            Flag("force", "restore over a non-empty database (pg_restore --clean --if-exists), "
                 "after a safety backup of it", False),
            Flag("safety_backup", "with --force, back up the target database first into the "
                 "target's store (--no-safety-backup: don't)", True),
            Flag("table", "restore only this table, with its indexes, constraints and owned "
                 "sequences (repeatable; schema.table or a plain name), from a full or partial "
                 "backup", repeatable=True),
            dry_run("show the plan and change nothing"),
            Flag("yes", "do not ask for confirmation (needed when not on a terminal)", False),
            JOBS,
        ),
        plan=_db,
    ),
)

namespace = collection("restore", SPECS)
