"""restore.db: the guarded real restore, for the day a backup is needed.

Order of safety: the plan is shown (and, with --dry-run, nothing else happens); a non-empty
target database is refused without --force; a person confirms on a terminal unless --yes;
the checksum is checked before anything is written; counts are compared afterwards.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from backups.archive.layout import BackupKey, parse_key
from backups.archive.manifest import Manifest
from backups.postgres.checks import compare_counts
from backups.postgres.clients import find_client
from backups.postgres.fetch import fetch_to_host, remote_path
from backups.postgres.restore_tool import restore_command, restore_tool
from backups.stores import Store, open_store
from backups.stores.host import open_host_store
from maintenance import pg
from maintenance.errors import ConfigError, MaintError
from maintenance.inventory import Host, Inventory
from maintenance.results import Result, Status
from maintenance.runners import Runner
from maintenance.secrets import mask_text

TASK = "restore.db"

_USER_TABLES = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
"""


@dataclass(frozen=True)
class RestoreOptions:
    backup: str
    target: str
    database: str
    store: str | None = None
    force: bool = False
    dry_run: bool = False
    yes: bool = False
    jobs: int = 2
    inventory: Inventory | None = None


def _key(options: RestoreOptions) -> BackupKey:
    key = parse_key(options.backup)
    if key is None:
        raise ConfigError(f"--backup {options.backup!r} is not a backup key (see backup.list)")
    return key


def _store(target: Host, options: RestoreOptions) -> Store:
    """--store, else the store of the host the backup came from, else the target's."""
    if options.store:
        return open_store(options.store)
    hosts = options.inventory.hosts if options.inventory else {}
    owner = hosts.get(_key(options).host, target)
    return open_host_store(owner)


def validate_restore(target: Host, options: RestoreOptions) -> None:
    if target.name != options.target:
        raise ConfigError(f"--target {options.target!r} must name one host, not a group")
    _key(options)
    pg.host_dsn(target)
    _store(target, options)
    if not (options.yes or options.dry_run or sys.stdin.isatty()):
        raise ConfigError("not on a terminal: pass --yes to restore without confirmation")


def database_state(server: pg.Postgres, database: str) -> str:
    """'absent', 'empty' or 'N objects' for DATABASE on SERVER."""
    with server.connect() as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            return "absent"
    with server.connect(database) as connection:
        row = connection.execute(_USER_TABLES).fetchone()
        assert row is not None  # an aggregate: always one row
        count = row[0]
    return "empty" if count == 0 else f"{count} objects"


def restore_target_host(target: Host, runner: Runner, options: RestoreOptions) -> Result:
    with pg.reach(target, runner, TASK) as server:
        return _restore_on(server, runner, options)


def _restore_on(server: pg.Postgres, runner: Runner, options: RestoreOptions) -> Result:
    target = server.host
    key = _key(options)
    store = _store(target, options)
    manifest = Manifest.from_json(store.get_bytes(key.manifest_key), key.manifest_key)
    state = "n/a" if key.is_globals else database_state(server, options.database)
    if state not in ("absent", "empty", "n/a") and not options.force:
        raise MaintError(
            f"database {options.database!r} on {target.name} is not empty ({state}); "
            "refusing to restore over it without --force"
        )
    plan = _plan(key, manifest, target, options, state, store)
    if options.dry_run:
        return Result(
            target.name, Status.SKIPPED, details={"plan": plan}, summary="would " + "; ".join(plan)
        )
    _confirm(plan, options)
    path = remote_path(target.settings.restore.tmp_dir, key)
    fetch_to_host(store, key, manifest, runner, path)
    try:
        if key.is_globals:
            return _replay_globals(server, runner, path, plan)
        if state == "absent":
            with server.connect() as connection:
                connection.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(options.database))
                )
        return _restore_database(server, runner, manifest, options, path, state, plan)
    finally:
        runner.run(["rm", "-f", path])


def _plan(key, manifest, target, options, state, store) -> list[str]:
    what = "roles and tablespaces" if key.is_globals else f"database {options.database!r}"
    steps = [f"check {key.key} ({manifest.size} bytes) against its sha256 from {store.url}"]
    if state == "absent":
        steps.append(f"create database {options.database!r} on {target.name}")
    elif state not in ("empty", "n/a"):
        steps.append(
            f"drop and recreate the objects of {options.database!r} ({state}) on {target.name}"
        )
    steps.append(
        f"restore {what} on {target.name} from {manifest.host}/{manifest.database}"
        f" taken {manifest.started_at}"
    )
    if not key.is_globals:
        steps.append(f"compare row counts of {len(manifest.tables)} tables with the manifest")
    return steps


def _confirm(plan: list[str], options: RestoreOptions) -> None:
    if options.yes:
        return
    sys.stderr.write("Plan:\n" + "".join(f"  - {step}\n" for step in plan))
    sys.stderr.write(f"Type the database name ({options.database}) to go ahead: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip() != options.database:
        raise MaintError("not confirmed; nothing was changed")


def _restore_database(server, runner, manifest, options, path, state, plan) -> Result:
    target = server.host
    tool = restore_tool(server, runner, manifest)
    conninfo, env = server.client(options.database)
    clean = state not in ("absent", "empty")
    result = runner.run(restore_command(tool, conninfo, path, options.jobs, clean=clean), env=env)
    if result.exit_code != 0:
        raise MaintError(
            f"pg_restore exited with status {result.exit_code}: "
            f"{mask_text(result.stderr.strip())[-2000:]}"
        )
    with server.connect(options.database) as connection:
        counts = compare_counts(
            connection, manifest.tables, target.settings.restore.count_tolerance
        )
    bad = [count.reason() for count in counts if not count.ok]
    details: dict[str, Any] = {"plan": plan, "counts": [count.__dict__ for count in counts]}
    if bad:
        return Result(target.name, Status.FAILED, details=details, error="; ".join(bad))
    return Result(
        target.name,
        Status.CHANGED,
        details=details,
        summary=f"restored {options.database} ({len(counts)} tables, counts match)",
    )


def _replay_globals(server: pg.Postgres, runner: Runner, path: str, plan: list[str]) -> Result:
    """Replay roles and tablespaces with psql; roles that already exist are reported, not fatal."""
    target = server.host
    with server.connect() as connection:
        major = connection.info.server_version // 10000
        dbname = connection.info.dbname
    psql = find_client(target, runner, "psql", major)
    conninfo, env = server.client(dbname)
    result = runner.run(
        [psql.path, "-X", "-q", "--no-password", "-f", path, f"--dbname={conninfo}"], env=env
    )
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    details = {"plan": plan, "errors": [mask_text(line) for line in errors]}
    return Result(
        target.name,
        Status.CHANGED,
        details=details,
        summary=f"globals replayed, {len(errors)} statements reported errors",
    )
