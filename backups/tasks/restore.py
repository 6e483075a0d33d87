"""restore.db: the guarded real restore, for the day a backup is needed.

Order of safety: `--backup latest` is resolved to one backup and said first; the plan is
shown (and, with --dry-run, nothing else happens); a non-empty target database is refused
without --force; a person confirms on a terminal unless --yes; with --force the target is
backed up first (the safety backup, unless --no-safety-backup), and a failed safety backup
stops everything; the checksum is checked before anything is written; counts are compared
and the restore_checks run afterwards, as restore.verify runs them.

With --table only those tables (with their indexes, constraints and owned sequences) are
restored, from a full backup or a partial one (backups.postgres.table_list).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from psycopg import sql

from backups.archive.layout import BackupKey, parse_key
from backups.archive.manifest import Manifest
from backups.postgres.checks import compare_counts, run_user_checks
from backups.postgres.clients import find_client
from backups.postgres.fetch import fetch_to_host, remote_path
from backups.postgres.restore_tool import restore_command, restore_tool
from backups.sources import Source
from backups.stores import Store, open_store
from backups.stores.host import open_host_store, open_host_stores, store_holding
from backups.tasks.restore_choice import check_backup_flag, latest_of, newest_copy
from backups.tasks.restore_tables import (
    create_schemas,
    manifest_tables,
    only_tables,
    table_names,
    tables_state,
)
from backups.tasks.safety import take_safety_backup
from backups.tasks.source_restore import check_into, restore_source, source_of
from maintenance import pg
from maintenance.errors import ConfigError, MaintError
from maintenance.inventory import Host, Inventory
from maintenance.results import Result, Status
from maintenance.runners import Runner
from maintenance.secrets import mask_text
from maintenance.settings.backup import RestoreCheck
from maintenance.tablenames import Table, qualified_name, resolve_tables

TASK = "restore.db"
NO_CHECKS = "restore_checks not run: only some tables are restored"
log = structlog.get_logger()

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
    tables: tuple[str, ...] = ()
    safety_backup: bool = True


def _owner(target: Host, options: RestoreOptions, host: str) -> Host:
    """The inventory host named HOST (whose backup it is), else the target."""
    hosts = options.inventory.hosts if options.inventory else {}
    return hosts.get(host, target)


def _store(target: Host, options: RestoreOptions, key: BackupKey) -> Store:
    """--store, else the first store of the host the backup came from (else of the target)
    that holds the backup: with copies, a store that missed it is passed over."""
    if options.store:
        return open_store(options.store)
    owner = _owner(target, options, key.host)
    if len(owner.settings.backup.stores) == 1:
        return open_host_store(owner)
    return store_holding(owner, key.manifest_key)


def _chosen(target: Host, options: RestoreOptions) -> tuple[BackupKey, Store, str | None]:
    """The backup to restore and its store, with how `latest` was resolved (None for a key).

    `latest` is looked up in --store, else in every store of the host whose backup it is (the
    newest of them; the first store holding it).
    """
    latest = latest_of(options.backup, options.target, options.database)
    if latest is None:
        key = parse_key(options.backup)
        assert key is not None  # validate_restore refused anything else
        return key, _store(target, options, key), None
    host, database = latest
    if options.store:
        stores = [open_store(options.store)]
    else:
        stores = open_host_stores(_owner(target, options, host))
    key, store = newest_copy(stores, host, database)
    return key, store, f"--backup {options.backup} is {key.key} in {store.url}"


def _source(target: Host, options: RestoreOptions) -> Source | None:
    """The backup.sources entry whose backup --backup names (None: a PostgreSQL backup)."""
    latest = latest_of(options.backup, options.target, options.database)
    key = parse_key(options.backup)
    named = latest or ((key.host, key.database) if key else None)
    return source_of(_owner(target, options, named[0]), named[1]) if named else None


def validate_restore(target: Host, options: RestoreOptions) -> None:
    if target.name != options.target:
        raise ConfigError(f"--target {options.target!r} must name one host, not a group")
    check_backup_flag(options.backup, options.target, options.database)
    source = _source(target, options)
    if source is None:
        pg.host_dsn(target)
    elif options.tables:
        raise ConfigError(f"--table restores PostgreSQL tables, not a {source.kind} backup")
    else:
        check_into(source, options.database)
    if options.store:  # the host's own stores were checked at inventory load
        open_store(options.store)
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
    source = _source(target, options)
    if source is not None:
        return restore_source(
            target, runner, source, _chosen(target, options), options.database,
            force=options.force, dry_run=options.dry_run,
            confirm=lambda plan: _confirm(plan, options),
        )  # fmt: skip
    with pg.reach(target, runner, TASK) as server:
        return _restore_on(server, runner, options)


@dataclass(frozen=True)
class _Choice:
    """What this restore works from: the backup, its store and manifest, and the target."""

    key: BackupKey
    store: Store
    manifest: Manifest
    resolved: str | None  # how `latest` was resolved
    tables: list[Table]  # --table's, as the backup names them; empty: the whole backup
    state: str  # the target database's (or its chosen tables') state before


def _restore_on(server: pg.Postgres, runner: Runner, options: RestoreOptions) -> Result:
    target = server.host
    choice = _choose(server, options)
    if choice.state not in ("absent", "empty", "n/a") and not options.force:
        where = f"database {options.database!r} on {target.name}"
        if choice.tables:
            raise MaintError(
                f"{where} already has {choice.state}; refusing to restore over them without --force"
            )
        raise MaintError(
            f"{where} is not empty ({choice.state}); refusing to restore over it without --force"
        )
    plan = _plan(choice, target, options)
    if options.dry_run:
        return Result(
            target.name, Status.SKIPPED, details={"plan": plan}, summary="would " + "; ".join(plan)
        )
    _confirm(plan, options)
    safety = None
    if _overwrites(choice, options) and options.safety_backup:
        safety = take_safety_backup(server, runner, options.database)
        log.info("safety backup taken", task=TASK, host=target.name, **safety)
    key, manifest = choice.key, choice.manifest
    path = remote_path(target.settings.restore.tmp_dir, key)
    fetch_to_host(choice.store, key, manifest, runner, path)
    try:
        if key.is_globals:
            return _replay_globals(server, runner, path, plan)
        if choice.state == "absent":
            with server.connect() as connection:
                connection.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(options.database))
                )
        result = _restore_database(server, runner, choice, options, path, plan)
    finally:
        runner.run(["rm", "-f", path])
    if safety is not None:
        result.details["safety_backup"] = safety
        result.summary += f"; safety backup {safety['key']} in {safety['store']}"
    return result


def _choose(server: pg.Postgres, options: RestoreOptions) -> _Choice:
    """The backup (`latest` resolved and logged), the tables named, the target's state."""
    key, store, resolved = _chosen(server.host, options)
    if resolved:
        log.info("backup chosen", task=TASK, host=server.host.name, backup=options.backup,
                 key=key.key, store=store.url)  # fmt: skip
    manifest = Manifest.from_json(store.get_bytes(key.manifest_key), key.manifest_key)
    tables: list[Table] = []
    if options.tables:
        if key.is_globals:
            raise MaintError(f"{key.key} holds roles and tablespaces, no tables")
        tables = resolve_tables(options.tables, manifest_tables(manifest), f"backup {key.key}")
    state = "n/a" if key.is_globals else database_state(server, options.database)
    if tables and state != "absent":
        state = tables_state(server, options.database, tables)
    return _Choice(key, store, manifest, resolved, tables, state)


def _partial(choice: _Choice) -> bool:
    """Whether only some tables are restored (--table, or a partial backup)."""
    return bool(choice.tables or choice.manifest.partial_tables)


def _checks(target: Host, options: RestoreOptions, choice: _Choice) -> list[RestoreCheck]:
    """The restore_checks of the host whose backup it is (else the target's), as
    restore.verify runs them; none when only some tables are restored (see NO_CHECKS)."""
    if _partial(choice):
        return []
    return _owner(target, options, choice.key.host).settings.restore_checks


def _overwrites(choice: _Choice, options: RestoreOptions) -> bool:
    return options.force and choice.state not in ("absent", "empty", "n/a")


def _plan(choice: _Choice, target: Host, options: RestoreOptions) -> list[str]:
    key, manifest, state = choice.key, choice.manifest, choice.state
    what = "roles and tablespaces" if key.is_globals else f"database {options.database!r}"
    if choice.tables:
        what = f"tables {table_names(choice.tables)} (with their indexes, constraints and "
        what += f"sequences) into database {options.database!r}"
    steps = [choice.resolved] if choice.resolved else []
    if _overwrites(choice, options):
        steps.append(
            f"back up {options.database!r} on {target.name} first (safety backup into "
            f"{target.name}/{options.database}~safety)"
            if options.safety_backup
            else "no safety backup (--no-safety-backup)"
        )
    steps.append(
        f"check {key.key} ({manifest.size} bytes) against its sha256 from {choice.store.url}"
    )
    if state == "absent":
        steps.append(f"create database {options.database!r} on {target.name}")
    elif state not in ("empty", "n/a"):
        objects = state if choice.tables else f"the objects of {options.database!r} ({state})"
        steps.append(f"drop and recreate {objects} on {target.name}")
    steps.append(
        f"restore {what} on {target.name} from {manifest.host}/{manifest.database}"
        f" taken {manifest.started_at}"
    )
    if not key.is_globals:
        counted = len(choice.tables) if choice.tables else len(manifest.tables)
        steps.append(f"compare row counts of {counted} tables with the manifest")
        checks = _checks(target, options, choice)
        if checks:
            steps.append(f"run {len(checks)} restore_checks")
        elif _partial(choice):
            steps.append(NO_CHECKS)
    return steps


def _confirm(plan: list[str], options: RestoreOptions) -> None:
    if options.yes:
        return
    sys.stderr.write("Plan:\n" + "".join(f"  - {step}\n" for step in plan))
    sys.stderr.write(f"Type the database name ({options.database}) to go ahead: ")
    sys.stderr.flush()
    if sys.stdin.readline().strip() != options.database:
        raise MaintError("not confirmed; nothing was changed")


def _restore_database(
    server: pg.Postgres,
    runner: Runner,
    choice: _Choice,
    options: RestoreOptions,
    path: str,
    plan: list[str],
) -> Result:
    target, manifest = server.host, choice.manifest
    tool = restore_tool(server, runner, manifest)
    conninfo, env = server.client(options.database)
    clean = choice.state not in ("absent", "empty")
    command = restore_command(tool, conninfo, path, options.jobs, clean=clean)
    if _partial(choice):
        create_schemas(server, options.database, choice.tables or manifest_tables(manifest))
    with ExitStack() as stack:
        if choice.tables:
            command.insert(-1, stack.enter_context(only_tables(runner, path, choice.tables)))
        result = runner.run(command, env=env)
    if result.exit_code != 0:
        raise MaintError(
            f"pg_restore exited with status {result.exit_code}: "
            f"{mask_text(result.stderr.strip())[-2000:]}"
        )
    expected = manifest.tables
    if choice.tables:
        expected = {qualified_name(t): manifest.tables[qualified_name(t)] for t in choice.tables}
    checks = _checks(target, options, choice)
    with server.connect(options.database) as connection:
        counts = compare_counts(connection, expected, target.settings.restore.count_tolerance)
        outcomes = run_user_checks(connection, checks)
    bad = [count.reason() for count in counts if not count.ok]
    bad += [
        f"check {o.name!r} failed: " + (o.error or f"returned {o.value!r}")
        for o in outcomes if not o.ok
    ]  # fmt: skip
    details: dict[str, Any] = {
        "plan": plan, "backup": choice.key.key, "store": choice.store.url,
        "counts": [asdict(count) for count in counts],
        "checks": [asdict(outcome) for outcome in outcomes],
    }  # fmt: skip
    if choice.tables:
        details["tables"] = [qualified_name(table) for table in choice.tables]
    if _partial(choice):
        details["checks_not_run"] = NO_CHECKS
    if bad:
        return Result(target.name, Status.FAILED, details=details, error="; ".join(bad))
    passed = f", {len(outcomes)} checks pass" if outcomes else ""
    return Result(
        target.name,
        Status.CHANGED,
        details=details,
        summary=f"restored {options.database} from {choice.key.key} "
        f"({len(counts)} tables, counts match{passed})",
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
