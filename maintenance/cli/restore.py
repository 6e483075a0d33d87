"""Tasks of the `restore` namespace: restore.verify (drills) and restore.db (a real restore)."""

from invoke import Collection

from ..executor import DEFAULT_FORKS
from .common import run_task, task, task_help


@task(
    name="verify",
    help=task_help(
        target="host to restore on (default: the source's restore_target var); "
        "the source itself only when named here",
        backup="'latest' (default) or a backup key as backup.list shows it",
        database="drill only this database",
        keep="keep the scratch database after the drill (reported by name)",
        jobs="parallel pg_restore jobs (default 2)",
    ),
)
def verify(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    target=None,
    backup="latest",
    database=None,
    keep=False,
    jobs=2,
):
    """Restore drill: prove the newest backups restore, in a scratch database on the target.

    Fetches the backup checking its sha256, restores it with pg_restore, compares row counts
    with the manifest, runs restore_checks, records <key>.verify.json and drops the scratch
    database. --limit selects the source hosts; the target is looked up in the whole inventory.
    """
    from backups.tasks import drill

    run_task(
        "restore.verify", drill.verify_host, None,
        inventory=inventory, limit=limit, json=json, forks=forks, validate=drill.validate,
        make_options=lambda loaded: drill.DrillOptions(
            inventory=loaded, target=target, backup=backup, database=database, keep=keep,
            jobs=int(jobs),
        ),
    )  # fmt: skip


@task(
    name="db",
    help={
        "inventory": "inventory file (default: $MAINT_INVENTORY, else ./inventory.yaml)",
        "json": "print one JSON document on stdout (logs stay on stderr)",
        "backup": "the backup's key, as backup.list shows it (required)",
        "target": "host to restore on (required)",
        "database": "database to restore into (required)",
        "store": "store URL to read from (default: the backup host's backup.store, "
        "else the target's)",
        "force": "restore over a non-empty database (pg_restore --clean --if-exists)",
        "dry_run": "show the plan and change nothing",
        "yes": "do not ask for confirmation (needed when not on a terminal)",
        "jobs": "parallel pg_restore jobs (default 2)",
    },
)
def db(
    c,
    backup,
    target,
    database,
    inventory=None,
    json=False,
    store=None,
    force=False,
    dry_run=False,
    yes=False,
    jobs=2,
):
    """Restore a backup into DATABASE on TARGET: checksum first, counts checked after.

    Refuses a non-empty database without --force; asks for confirmation unless --yes.
    Globals backups (roles, tablespaces) are replayed with psql.
    """
    from backups.tasks.restore import RestoreOptions, restore_target_host, validate_restore

    run_task(
        "restore.db", restore_target_host, None,
        inventory=inventory, limit=target, json=json, forks=1, validate=validate_restore,
        make_options=lambda loaded: RestoreOptions(
            backup=backup, target=target, database=database, store=store, force=force,
            dry_run=dry_run, yes=yes, jobs=int(jobs), inventory=loaded,
        ),
    )  # fmt: skip


namespace = Collection("restore", verify, db)
