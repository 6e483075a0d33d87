"""restore.verify: prove that a backup restores, every week, without touching production.

For each source host and database: fetch the newest complete backup onto the target host
while checking its size and sha256, restore it into a marked scratch database with
pg_restore, compare row counts with the manifest, run the user's checks, record the outcome
beside the backup (`<key>.verify.json`) and drop the scratch database.

A `backup.sources` backup is fetched and checked the same way, then drilled by its kind
(backups/sources: an integrity check and row counts for SQLite, the restore and check
commands of a command source) and recorded the same way; the target needs no PostgreSQL
server for those.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from backups.archive import catalog
from backups.archive.layout import BackupKey, parse_key
from backups.archive.manifest import Manifest, read_manifest
from backups.postgres.checks import compare_counts, run_user_checks
from backups.postgres.fetch import fetch_to_host, remote_path
from backups.postgres.restore_tool import restore_command, restore_tool
from backups.postgres.scratch import create_scratch, drop_scratch, scratch_name
from backups.postgres.streamed_restore import StreamedRestore, host_can_follow
from backups.sources import Source, host_sources
from backups.stores import Store
from backups.stores.host import open_host_stores
from backups.tasks.source_backup import chosen_sources
from maintenance import pg
from maintenance.errors import ConfigError, HostUnreachable, MaintError
from maintenance.inventory import Host, Inventory
from maintenance.limits import select_hosts
from maintenance.results import Result, Status
from maintenance.runners import Runner, runner_for
from maintenance.secrets import mask_text
from maintenance.stopwatch import timed_step
from maintenance.units import format_duration

TASK = "restore.verify"
NO_TARGET = "no restore target: set 'restore_target' or pass --target"
log = structlog.get_logger()


@dataclass(frozen=True)
class DrillOptions:
    inventory: Inventory
    target: str | None = None
    limit: str | None = None  # the --limit that selected the sources (None: all hosts)
    backup: str = "latest"
    database: str | None = None
    sources: tuple[str, ...] = ()  # --source: only these sources (no database unless named)
    keep: bool = False
    jobs: int = 2


@dataclass
class DrillRecord:
    """What `<key>.verify.json` holds: when the backup last restored, where, and how fast."""

    key: str
    database: str
    source: str
    target: str
    scratch_database: str
    started_at: str
    finished_at: str = ""
    ok: bool = False
    reasons: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    restore_time_s: float | None = None
    counts: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    kept: bool = False
    kind: str = "postgres"  # the source kind drilled (backups/sources), postgres by pg_restore
    format: int = 1

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, default=str).encode()


def has_target(source: Host, options: DrillOptions) -> bool:
    """Whether SOURCE is to be drilled at all: --target, or its own `restore_target` var."""
    return bool(options.target or source.settings.restore_target)


def resolve_target(source: Host, options: DrillOptions) -> Host:
    """The drill's target: --target, else the source's `restore_target` var; never the source
    itself unless --target names it explicitly."""
    name = options.target or source.settings.restore_target
    if not name:
        raise ConfigError(f"host {source.name!r}: {NO_TARGET}")
    if name == source.name and not options.target:
        raise ConfigError(
            f"host {source.name!r}: restore_target is the host itself; pass --target "
            f"{source.name} to drill on the source explicitly"
        )
    if name not in options.inventory.hosts:
        raise ConfigError(f"host {source.name!r}: restore target {name!r} is not in the inventory")
    return options.inventory.hosts[name]


def validate(source: Host, options: DrillOptions) -> None:
    """Everything a drill needs beyond the vars checked at load, before any host starts.

    A source without any restore target is skipped (a web host under `all`, a replica), so
    the weekly default drill still runs for the others; only when no selected host has one is
    the run refused, since it would prove nothing.
    """
    if not has_target(source, options):
        selected = select_hosts(options.inventory, options.limit)
        if any(has_target(host, options) for host in selected):
            return
    target = resolve_target(source, options)
    chosen_units(source, options)
    if drills_postgres(source, options):
        pg.host_dsn(target)


def drills_postgres(source: Host, options: DrillOptions) -> bool:
    """Whether PostgreSQL backups are drilled: unless --source alone names what to drill, or
    the host has sources and no PostgreSQL server of its own."""
    if options.database:
        return True
    if options.sources:
        return False
    return bool(source.settings.postgres.dsn or not source.settings.backup.sources)


def chosen_units(source: Host, options: DrillOptions) -> set[str]:
    """The units of the sources to drill: --source's, else every source's unless --database
    alone was given. Raise ConfigError for a --source that is none of the host's."""
    if options.database and not options.sources:
        return set()
    return {unit for kind in chosen_sources(source, options.sources) for unit in kind.units()}


def chosen_backups(store: Store, source: Host, options: DrillOptions) -> list[BackupKey]:
    """The named backup, or the newest complete one of each database that is not dated in
    the future (catalog.in_future: a bogus 2099 stamp must not stand in for last night's)."""
    if options.backup != "latest":
        key = parse_key(options.backup)
        if key is None or key.host != source.name:
            raise ConfigError(f"--backup {options.backup!r} is not a backup key of {source.name}")
        return [key]
    newest: dict[str, BackupKey] = {}
    wanted = _wanted(source, options)
    backups = [
        backup for backup in catalog.scan(store, source.name)
        if wanted is None or backup.key.database in wanted
    ]  # fmt: skip
    now = datetime.now(UTC)
    for backup in catalog.current(backups, now):
        if not backup.key.is_globals:
            newest[backup.key.database] = backup.key
    if not newest:
        future = len(catalog.future_dated(catalog.complete(backups), now))
        aside = f" ({future} dated in the future set aside)" if future else ""
        said = ", ".join(sorted(wanted)) if wanted else "any database"
        raise MaintError(f"no complete backup of {said} in {store.url}{aside}")
    return [newest[name] for name in sorted(newest)]


def drill_store(source: Host, options: DrillOptions) -> Store:
    """The store a drill reads from (and writes its records to): with several stores
    (copies), the first holding the named backup, or the one holding the newest complete
    backup of the selection (the first of equals); a store that missed backups is passed over.
    """
    stores = open_host_stores(source)
    if len(stores) == 1:
        return stores[0]
    named = parse_key(options.backup) if options.backup != "latest" else None
    if named is not None:
        return next((s for s in stores if s.stat(named.manifest_key) is not None), stores[0])
    now = datetime.now(UTC)

    def newest(store: Store) -> datetime:
        present = catalog.current(catalog.scan(store, source.name, options.database), now)
        return present[-1].key.time if present else datetime.min.replace(tzinfo=UTC)

    return max(stores, key=newest)  # max keeps the first of equals


def _wanted(source: Host, options: DrillOptions) -> set[str] | None:
    """The backup names to drill (None: every one in the store): --database and the units of
    --source; without either, every one, less PostgreSQL's when drills_postgres says so."""
    units = chosen_units(source, options)
    if options.database or options.sources:
        return units | ({options.database} if options.database else set())
    return None if drills_postgres(source, options) else units


def _unit_sources(host: Host) -> dict[str, Source]:
    """Unit name -> Source for every source of HOST: the backups drilled by their kind."""
    return {unit: source for source in host_sources(host) for unit in source.units()}


def verify_host(source: Host, runner: Runner, options: DrillOptions) -> Result:
    """Drill every chosen backup of SOURCE on its target; each drill's failure is its own."""
    if not has_target(source, options):
        return Result(source.name, Status.SKIPPED, details={"reason": NO_TARGET}, summary=NO_TARGET)
    store = drill_store(source, options)
    target = resolve_target(source, options)
    keys = chosen_backups(store, source, options)
    kinds = _unit_sources(source)
    databases = [key for key in keys if key.database not in kinds]
    with runner_for(target) as target_runner:
        drill = _Drill(source, target, target_runner, store, options)
        records = [drill.run(key, kinds[key.database]) for key in keys if key.database in kinds]
        if databases:
            with pg.reach(target, target_runner, TASK) as server:
                drill.server = server
                records += [drill.run(key) for key in databases]
    failed = [record for record in records if not record.ok]
    passed = [record for record in records if record.ok]
    summary = f"{len(passed)}/{len(records)} drills passed on {target.name}"
    if passed:
        summary += "; restore " + ", ".join(
            f"{r.database} {format_duration(r.restore_time_s or 0)}" for r in passed
        )
    error = "; ".join(f"{r.database}: {'; '.join(r.reasons)}" for r in failed) or None
    return Result(
        source.name,
        Status.FAILED if failed else Status.OK,
        details={"target": target.name, "drills": [asdict(record) for record in records]},
        summary=summary,
        error=error,
    )


class _Drill:
    """Drills backups of SOURCE on TARGET: PostgreSQL ones in `server` (the target's, set once
    reached), the others by their source's kind."""

    server: pg.Postgres

    def __init__(
        self, source: Host, target: Host, runner: Runner, store: Store, options: DrillOptions
    ) -> None:
        self.source, self.target, self.runner, self.store = source, target, runner, store
        self.options = options
        self.restore = source.settings.restore
        self.tmp_dir = self.target.settings.restore.tmp_dir
        self.checks = source.settings.restore_checks
        self._can_follow: bool | None = None

    def run(self, key: BackupKey, kind: Source | None = None) -> DrillRecord:
        started = datetime.now(UTC)
        record = DrillRecord(
            key=key.key, database=key.database, source=self.source.name, target=self.target.name,
            scratch_database=scratch_name(key.database, started) if kind is None else "",
            started_at=started.isoformat(),
        )  # fmt: skip
        bound = log.bind(task=TASK, host=self.source.name, target=self.target.name, key=key.key)
        try:
            if kind is None:
                self._restore_and_check(key, record)
            else:
                self._drill_source(key, kind, record)
        except HostUnreachable:
            raise
        except MaintError as exc:
            record.reasons.append(mask_text(str(exc)))
        record.ok = not record.reasons
        record.finished_at = datetime.now(UTC).isoformat()
        self._record(key, record, bound)
        return record

    def _drill_source(self, key: BackupKey, kind: Source, record: DrillRecord) -> None:
        """Fetch KEY checked, and have its source's kind drill it into a throwaway target."""
        record.kind = kind.kind
        manifest = self._timed(record, "manifest_s", read_manifest, self.store, key)
        path = remote_path(self.tmp_dir, key)
        self._timed(
            record, "download_s", fetch_to_host, self.store, key, manifest, self.runner, path
        )
        try:
            drilled = self._timed(
                record, "drill_s", kind.drill, self.runner, key.database, path, manifest
            )
        finally:
            self.runner.run(["rm", "-f", path])
        record.scratch_database = drilled.scratch
        record.restore_time_s = drilled.restore_s
        record.counts = drilled.counts
        record.reasons += drilled.reasons

    def _restore_and_check(self, key: BackupKey, record: DrillRecord) -> None:
        manifest = self._timed(record, "manifest_s", read_manifest, self.store, key)
        path = remote_path(self.tmp_dir, key)
        try:
            if self._streams(manifest):
                self._streamed(key, manifest, record, path)
            else:
                self._fetch_then_restore(key, manifest, record, path)
            self._timed(record, "checks_s", self._check, manifest, record)
        finally:
            failed = bool(record.reasons)
            record.kept = self.options.keep or (failed and self.restore.keep_failed)
            try:
                if not record.kept:
                    self._timed(
                        record, "drop_s", drop_scratch, self.server, record.scratch_database
                    )
            finally:
                self.runner.run(["rm", "-f", path])

    def _streams(self, manifest: Manifest) -> bool:
        """Whether to restore while the backup arrives: when its bytes cross a network (a
        cloud store, an SSH target), the backup recorded its data offsets and the target
        can follow a growing file (asked once per target).

        From a local directory to a local target the download is this machine's CPU
        decompressing, which the restore needs too: overlapping them measured no faster
        there (docs/bench-backup-restore.md), so the file is fetched first.
        """
        remote = self.target.connection != "local" or not self.store.url.startswith("file:")
        if manifest.offsets() is None or not remote:
            return False
        if self._can_follow is None:
            self._can_follow = host_can_follow(self.runner)
        return self._can_follow

    def _streamed(self, key: BackupKey, manifest: Manifest, record: DrillRecord, path: str) -> None:
        """Download, scratch database and restore at once (backups.postgres.streamed_restore);
        the restore time is the whole, first byte read to restored database."""
        restore = StreamedRestore(
            self.store, key, manifest, self.runner, self.server,
            record.scratch_database, path, self.options.jobs,
        )  # fmt: skip
        try:
            restore.run()
        finally:
            record.steps.update(restore.steps)
        record.restore_time_s = restore.steps["fetch_and_restore_s"]

    def _fetch_then_restore(
        self, key: BackupKey, manifest: Manifest, record: DrillRecord, path: str
    ) -> None:
        """A backup without data offsets, or a target without GNU coreutils: the whole file
        is fetched and checked first, then restored with pg_restore --jobs."""
        self._timed(
            record, "download_s", fetch_to_host, self.store, key, manifest, self.runner, path
        )
        self._timed(record, "create_s", create_scratch, self.server, record.scratch_database)
        self._timed(record, "restore_s", self._restore, manifest, record, path)
        record.restore_time_s = record.steps["restore_s"]

    def _restore(self, manifest: Manifest, record: DrillRecord, path: str) -> None:
        tool = restore_tool(self.server, self.runner, manifest)
        conninfo, env = self.server.client(record.scratch_database)
        result = self.runner.run(restore_command(tool, conninfo, path, self.options.jobs), env=env)
        if result.exit_code != 0:
            raise MaintError(
                f"pg_restore exited with status {result.exit_code}: "
                f"{mask_text(result.stderr.strip())[-2000:]}"
            )

    def _check(self, manifest: Manifest, record: DrillRecord) -> None:
        with self.server.connect(record.scratch_database) as connection:
            counts = compare_counts(connection, manifest.tables, self.restore.count_tolerance)
            outcomes = run_user_checks(connection, self.checks)
        record.counts = [asdict(count) for count in counts]
        record.checks = [asdict(outcome) for outcome in outcomes]
        record.reasons += [count.reason() for count in counts if not count.ok]
        record.reasons += [
            f"check {o.name!r} failed: " + (o.error or f"returned {o.value!r}")
            for o in outcomes if not o.ok
        ]  # fmt: skip

    def _record(self, key: BackupKey, record: DrillRecord, bound) -> None:
        try:
            self.store.put_bytes(key.verify_key, record.to_json())
        except MaintError as exc:
            record.reasons.append(f"drill result could not be recorded: {mask_text(str(exc))}")
            record.ok = False
        if record.ok:
            bound.info("drill passed", restore_s=record.restore_time_s)
        else:
            bound.error("drill failed", reasons=record.reasons, kept=record.kept)

    @staticmethod
    def _timed(record: DrillRecord, step: str, function, *args):
        return timed_step(record.steps, step, function, *args)
