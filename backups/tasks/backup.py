"""backup.db: pg_dump on each database host, streamed through zstd and sha256 into a store.

The data object is committed first and its manifest written last, so a backup is complete
only once both exist; every failure before that aborts the upload and leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from backups.archive import catalog
from backups.archive.codecs import suffix
from backups.archive.layout import LABEL_MARK, database_key
from backups.archive.manifest import Manifest, TableCount
from backups.archive.transfer import DumpError, dump_into_stores, write_manifests
from backups.postgres.clients import ClientTool, find_client
from backups.postgres.snapshot import count_rows, exported_snapshot, server_version, user_tables
from backups.sources import Source
from backups.stores import Store
from backups.stores.fanout import Copy
from backups.stores.host import open_host_stores
from backups.tasks.prune import prune_database, prune_plan
from backups.tasks.source_backup import back_up_sources, chosen_sources, plan_lines
from maintenance import __version__, pg
from maintenance.errors import HostUnreachable, MaintError
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.runners import Runner
from maintenance.secrets import mask_text
from maintenance.settings.backup import BackupSettings
from maintenance.tablenames import Table, qualified_name, resolve_tables
from maintenance.units import format_size

TASK = "backup.db"
log = structlog.get_logger()


@dataclass(frozen=True)
class BackupOptions:
    databases: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()  # --source: only these backup.sources entries
    prune: bool = False
    dry_run: bool = False
    tables: tuple[str, ...] = ()  # --table: a partial backup of these tables only
    label: str | None = None  # a series of its own, `<database>~<label>` (restore.db's safety)


PARTIAL = "partial"


def series_name(database: str, options: BackupOptions) -> str:
    """The name DATABASE's backups are kept under: the database's own for full backups;
    `<database>~partial` for --table ones, so that retention, freshness and `latest` of the
    database never count them; `<database>~<label>` for a labelled one."""
    label = options.label or (PARTIAL if options.tables else None)
    return f"{database}{LABEL_MARK}{label}" if label else database


def dump_command(
    tool: ClientTool, conninfo: str, snapshot: str, tables: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """pg_dump in custom format, uncompressed (the codec compresses), inside SNAPSHOT; only
    TABLES when given, each quoted so pg_dump matches that name literally."""
    return [
        tool.path,
        "--format=custom",
        "--compress=0",
        f"--snapshot={snapshot}",
        *(f"--table={_pattern(schema)}.{_pattern(table)}" for schema, table in tables),
        "--no-password",
        f"--dbname={conninfo}",
    ]


def _pattern(name: str) -> str:
    """NAME as a pg_dump pattern matching only itself: double-quoted, quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def databases_of(server: pg.Postgres, wanted: tuple[str, ...]) -> list[str]:
    """The databases to back up: flags, else `postgres.databases`, else every connectable one."""
    return list(wanted) if wanted else server.databases()


def backs_up_postgres(host: Host, options: BackupOptions) -> bool:
    """Whether PostgreSQL databases are backed up: unless --source alone says what to back
    up, or the host has backup.sources and no PostgreSQL server (postgres.dsn)."""
    if options.databases:
        return True
    if options.sources:
        return False
    return bool(host.settings.postgres.dsn or not host.settings.backup.sources)


def backup_host(host: Host, runner: Runner, options: BackupOptions) -> Result:
    """Back up every database and source of HOST; one failing does not stop the next."""
    sources = [] if options.tables else chosen_sources(host, options.sources)
    if not backs_up_postgres(host, options):
        return _back_up(host, None, runner, options, sources)
    with pg.reach(host, runner, TASK) as server:
        return _back_up(host, server, runner, options, sources)


def back_up_database(server: pg.Postgres, runner: Runner, database: str, label: str) -> Result:
    """DATABASE backed up as backup.db does, under `<database>~LABEL`, on a server already
    reached (restore.db's safety backup)."""
    options = BackupOptions(databases=(database,), label=label)
    return _back_up(server.host, server, runner, options, [])


def _back_up(
    host: Host,
    server: pg.Postgres | None,
    runner: Runner,
    options: BackupOptions,
    sources: list[Source],
) -> Result:
    settings = host.settings.backup
    stores = open_host_stores(host)
    where = " and ".join(store.url for store in stores)
    databases = databases_of(server, options.databases) if server is not None else []
    if options.dry_run:
        plan = [f"{host.name}/{series_name(name, options)} -> {where}" for name in databases]
        plan += plan_lines(host, sources, where)
        names = [*databases, *(unit for source in sources for unit in source.units())]
        summary = f"would back up {', '.join(names)} to {where}"
        if options.prune:
            plan.append(f"then prune: {prune_plan(host, datetime.now(UTC))}")
            summary += f", then prune ({plan[-1].removeprefix('then prune: ')})"
        return Result(host.name, Status.SKIPPED, details={"plan": plan}, summary=summary)
    reachable, unreachable = preflight(stores)
    outcomes = []
    if server is not None:
        dumper = _Dumper(server, runner, reachable, settings, options)
        outcomes += [dumper.backup(database, unreachable) for database in databases]
    outcomes += back_up_sources(host, runner, reachable, unreachable, sources)
    if options.prune:  # each store that now holds the new backup, by its own catalog
        by_url = {store.url: store for store in stores}
        for outcome in outcomes:
            outcome["pruned"] = [
                {"store": copy["store"],
                 **prune_database(host, by_url[copy["store"]], outcome["database"],
                                  dry_run=False)}
                for copy in outcome.get("stores", ()) if copy["status"] == "ok"
            ]  # fmt: skip
    return _host_result(host, stores, outcomes)


def preflight(stores: list[Store]) -> tuple[list[Store], list[Copy]]:
    """The stores that pass their preflight, and a failed copy for each one that does not.
    Raise the error when none passes: there is nowhere to write."""
    reachable, unreachable = [], []
    for store in stores:
        try:
            store.preflight()
            reachable.append(store)
        except MaintError as exc:
            if len(stores) == 1:
                raise
            unreachable.append(Copy(store, error=exc))
    if not reachable:
        raise MaintError(
            "no store is reachable: "
            + "; ".join(f"{copy.store.url}: {mask_text(str(copy.error))}" for copy in unreachable)
        )
    return reachable, unreachable


def _host_result(host: Host, stores: list[Store], outcomes: list[dict[str, Any]]) -> Result:
    failed = [o for o in outcomes if o["status"] == "failed"]
    done = [o for o in outcomes if o["status"] == "ok"]
    total = sum(o["size"] for o in done)
    where = " and ".join(store.url for store in stores)
    sources = sum("kind" in o for o in outcomes)  # backup.sources' outcomes name their kind
    what = {len(outcomes): "sources", 0: "databases"}.get(sources, "databases and sources")
    summary = f"{len(done)}/{len(outcomes)} {what} backed up, {format_size(total)} to {where}"
    flagged = [f"{o['database']}: {flag}" for o in done for flag in o["flags"]]
    if flagged:
        summary += "; " + "; ".join(flagged)
    error = "; ".join(f"{o['database']}: {o['error']}" for o in failed) or None
    details: dict[str, Any] = {"store": stores[0].url, "databases": outcomes}
    if len(stores) > 1:
        details["stores"] = [store.url for store in stores]
    return Result(
        host.name,
        Status.FAILED if failed else Status.OK,
        details=details,
        summary=summary,
        error=error,
    )


class _Dumper:
    """Backs up databases of one host, finding a matching pg_dump once per server version."""

    def __init__(
        self,
        server: pg.Postgres,
        runner: Runner,
        stores: list[Store],
        settings: BackupSettings,
        options: BackupOptions,
    ) -> None:
        self.server, self.runner, self.stores, self.settings = server, runner, stores, settings
        self.options = options
        self.store = stores[0]  # where the previous backup's size is read from
        self.host = server.host
        self._tools: dict[int, ClientTool] = {}

    def backup(self, database: str, unreachable: list[Copy]) -> dict[str, Any]:
        """Back up DATABASE into every reachable store; UNREACHABLE ones are reported failed.
        One store failing fails the database (and the host) without undoing the others."""
        bound = log.bind(task=TASK, host=self.host.name, database=database)
        try:
            outcome, copies = self._backup(database)
        except HostUnreachable:
            raise  # the whole host is out of reach: the executor reports it as such
        except MaintError as exc:
            message = mask_text(str(exc))
            bound.error("backup failed", error=message)
            failed = [*self.stores, *(copy.store for copy in unreachable)]
            return {"database": database, "status": "failed", "error": message,
                    "stores": [Copy(s, error=exc).to_dict() for s in failed]}  # fmt: skip
        copies = [*copies, *unreachable]
        outcome["stores"] = [copy.to_dict() for copy in copies]
        lost = [copy for copy in copies if not copy.ok]
        for copy in lost:
            bound.error("copy failed", store=copy.store.url, error=mask_text(str(copy.error)))
        if lost:
            outcome["status"] = "failed"
            outcome["error"] = (
                "; ".join(f"{copy.store.url}: {mask_text(str(copy.error))}" for copy in lost)
                + " (complete in "
                + ", ".join(c.store.url for c in copies if c.ok)
                + ")"
            )
        for flag in outcome["flags"]:
            bound.warning("backup flagged", flag=flag)
        bound.info("backup complete", key=outcome["key"], size=outcome["size"],
                   stores=[copy.store.url for copy in copies if copy.ok])  # fmt: skip
        return outcome

    def _tool(self, major: int) -> ClientTool:
        if major not in self._tools:
            self._tools[major] = find_client(self.host, self.runner, "pg_dump", major)
        return self._tools[major]

    def _backup(self, database: str) -> tuple[dict[str, Any], list[Copy]]:
        series = series_name(database, self.options)
        previous = catalog.complete(catalog.scan(self.store, self.host.name, series))
        with exported_snapshot(self.server, database) as (connection, snapshot):
            version, major = server_version(connection)
            tool = self._tool(major)
            chosen = None
            if self.options.tables:  # before pg_dump starts: a wrong name dumps nothing
                held = user_tables(connection)
                chosen = resolve_tables(self.options.tables, held, f"database {database}")
            started = datetime.now(UTC)
            codec = self.settings.codec
            fresh = database_key(self.host.name, series, started, suffix(codec))
            key = catalog.free_key(self.stores, fresh)
            counts = _CountInBackground(connection, self.settings.exact_count_max_size, chosen)
            try:
                conninfo, env = self.server.client(database)
                command = dump_command(tool, conninfo, snapshot, chosen or ())
                stream, copies = dump_into_stores(
                    self.runner, command, env, self.stores, key, codec, self.settings.level
                )
            except BaseException:
                counts.abandon(connection)
                raise
            tables = counts.result()
        finished = datetime.now(UTC)
        flags = self._sanity_flags(stream.stored.size, previous)
        offsets = stream.archive.offsets()
        manifest = Manifest(
            host=self.host.name, database=database, key=key.key,
            started_at=started.isoformat(), finished_at=finished.isoformat(),
            size=stream.stored.size, sha256=stream.stored.sha256.hexdigest(),
            codec=self.settings.codec, server_version=version, pg_dump_version=tool.version,
            tool_version=__version__, tables=tables, flags=flags,
            data_offsets={str(k): v for k, v in offsets.items()} if offsets else None,
            source={"kind": "postgres", "name": database},
            counts={name: count.rows for name, count in tables.items()},
            partial_tables=[qualified_name(table) for table in chosen] if chosen else None,
        )  # fmt: skip
        write_manifests(copies, key, manifest)
        if not any(copy.ok for copy in copies):
            raise MaintError("; ".join(f"{c.store.url}: {c.error}" for c in copies))
        return {
            "database": database, "status": "ok", "key": key.key, "size": manifest.size,
            "raw_size": stream.raw_size, "sha256": manifest.sha256, "tables": len(tables),
            "duration_s": round((finished - started).total_seconds(), 3), "flags": flags,
            **({"partial_tables": manifest.partial_tables} if chosen else {}),
        }, copies  # fmt: skip

    def _sanity_flags(self, size: int, previous: list[catalog.StoredBackup]) -> list[str]:
        if not previous:
            return []
        last = previous[-1]
        if size < last.size * self.settings.min_size_ratio:
            return [
                f"much smaller than the previous backup ({format_size(size)} against "
                f"{format_size(last.size)} on {last.key.time:%Y-%m-%d %H:%M}Z)"
            ]
        return []


class _CountInBackground:
    """Counts rows on the snapshot's connection while pg_dump streams, in the same snapshot."""

    def __init__(self, connection, exact_limit: int, only: list[Table] | None = None) -> None:
        self._tables: dict[str, TableCount] = {}
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(connection, exact_limit, only), daemon=True
        )
        self._thread.start()

    def _run(self, connection, exact_limit: int, only: list[Table] | None) -> None:
        try:
            self._tables = count_rows(connection, exact_limit, only)
        except BaseException as exc:  # re-raised in the caller's thread by result()
            self._error = exc

    def abandon(self, connection) -> None:
        """Stop counting: the dump failed and the snapshot is about to be released."""
        connection.cancel_safe()
        self._thread.join()

    def result(self) -> dict[str, TableCount]:
        self._thread.join()
        if self._error is not None:
            raise DumpError(f"counting rows failed: {mask_text(str(self._error))}") from self._error
        return self._tables
