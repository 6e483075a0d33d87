"""Tasks of the `backup` namespace: backup.db, backup.globals, backup.list, backup.prune.

The procedures are imported inside each task (see common.py's docstring on start-up time).
"""


from invoke import Collection

from ..executor import DEFAULT_FORKS
from .common import run_task, task, task_help

KEEP_FLAGS = {
    "keep_last": "keep the N newest backups",
    "keep_hourly": "keep the newest backup of each of the last N hours that have one",
    "keep_daily": "keep the newest backup of each of the last N days that have one",
    "keep_weekly": "keep the newest backup of each of the last N ISO weeks that have one",
    "keep_monthly": "keep the newest backup of each of the last N months that have one",
    "keep_yearly": "keep the newest backup of each of the last N years that have one",
    "keep_within": "keep every backup within this age of the newest (e.g. 30d, 12mo, 1y)",
}


def _validate(host, options) -> None:
    """Refuse what only the store backend can check (bucket names, endpoints, part sizes)
    before any host starts work; the vars themselves were checked when the inventory loaded."""
    from backups.stores.host import open_host_store

    open_host_store(host)


def _validate_db(host, options) -> None:
    """As _validate, and with --prune a keep policy that is missing, before any dump."""
    from backups.tasks.prune import policy_for

    _validate(host, options)
    if options.prune:
        policy_for(host, {})


def _validate_prune(host, options) -> None:
    """As _validate, and a keep policy that is empty or bad once the flags apply."""
    from backups.tasks.prune import policy_for

    _validate(host, options)
    policy_for(host, dict(options.overrides))


@task(
    name="db",
    help=task_help(
        database="back up only this database (repeatable; default: postgres.databases, "
        "else every connectable database)",
        prune="apply the retention rules right after each successful backup",
        dry_run="show what would be backed up where, and do nothing",
    ),
    iterable=["database"],
)
def db(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    database=None,
    prune=False,
    dry_run=False,
):
    """Back up each database with pg_dump, streamed through zstd into the backup store.

    The manifest (size, sha256, row counts from the dump's own snapshot) is written last;
    a failed dump leaves no object behind.
    """
    from backups.tasks.backup import BackupOptions, backup_host

    options = BackupOptions(databases=tuple(database or ()), prune=prune, dry_run=dry_run)
    run_task(
        "backup.db",
        backup_host,
        options,
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        validate=_validate_db,
    )


@task(name="globals", help=task_help())
def globals_(c, inventory=None, limit=None, json=False, forks=DEFAULT_FORKS):
    """Back up roles and tablespaces (pg_dumpall --globals-only) beside the database dumps."""
    from backups.tasks.globals import backup_globals

    run_task(
        "backup.globals",
        backup_globals,
        None,
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        validate=_validate,
    )


@task(name="list", help=task_help(database="only this database's backups"))
def list_(c, inventory=None, limit=None, json=False, forks=DEFAULT_FORKS, database=None):
    """List complete backups per host and database: time, age, size, codec, key."""
    from backups.tasks.listing import ListOptions, list_host

    run_task(
        "backup.list",
        list_host,
        ListOptions(database=database),
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        validate=_validate,
        columns=("database", "time", "age", "size", "codec", "drill", "key"),
    )


@task(
    name="prune",
    help=task_help(dry_run="list what would be removed and why each survivor stays", **KEEP_FLAGS),
)
def prune(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    dry_run=False,
    keep_last=None,
    keep_hourly=None,
    keep_daily=None,
    keep_weekly=None,
    keep_monthly=None,
    keep_yearly=None,
    keep_within=None,
):
    """Apply restic-style keep rules (backup.retention vars, flags on top) per database.

    Never removes the newest complete backup; refuses an empty policy.
    """
    from backups.tasks.prune import PruneOptions, prune_host

    given = {
        "keep_last": keep_last,
        "keep_hourly": keep_hourly,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "keep_yearly": keep_yearly,
        "keep_within": keep_within,
    }
    overrides = {name: value for name, value in given.items() if value not in (None, "")}
    options = PruneOptions(dry_run=dry_run, overrides=tuple(overrides.items()))
    run_task(
        "backup.prune",
        prune_host,
        options,
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        validate=_validate_prune,
    )


namespace = Collection("backup", db, globals_, list_, prune)
