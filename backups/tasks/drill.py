"""restore.verify: prove that a backup restores, every week, without touching production.

For each source host and database: fetch the newest complete backup onto the target host
while checking its size and sha256, restore it into a marked scratch database with
pg_restore, compare row counts with the manifest, run the user's checks, record the outcome
beside the backup (`<key>.verify.json`) and drop the scratch database.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from backups.archive import catalog
from backups.archive.layout import BackupKey, parse_key
from backups.archive.manifest import Manifest, ManifestError
from backups.postgres.checks import compare_counts, run_user_checks
from backups.postgres.fetch import fetch_to_host, remote_path
from backups.postgres.restore_tool import restore_command, restore_tool
from backups.postgres.scratch import create_scratch, drop_scratch, scratch_name
from backups.stores import Store
from backups.stores.host import open_host_store
from maintenance import pg
from maintenance.errors import ConfigError, HostUnreachable, MaintError
from maintenance.inventory import Host, Inventory
from maintenance.limits import select_hosts
from maintenance.results import Result, Status
from maintenance.runners import Runner, runner_for
from maintenance.secrets import mask_text
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
    open_host_store(source)
    target = resolve_target(source, options)
    pg.host_dsn(target)


def chosen_backups(store: Store, source: Host, options: DrillOptions) -> list[BackupKey]:
    """The named backup, or the newest complete one of each database that is not dated in
    the future (catalog.in_future: a bogus 2099 stamp must not stand in for last night's)."""
    if options.backup != "latest":
        key = parse_key(options.backup)
        if key is None or key.host != source.name:
            raise ConfigError(f"--backup {options.backup!r} is not a backup key of {source.name}")
        return [key]
    newest: dict[str, BackupKey] = {}
    backups = catalog.scan(store, source.name, options.database)
    now = datetime.now(UTC)
    for backup in catalog.current(backups, now):
        if not backup.key.is_globals:
            newest[backup.key.database] = backup.key
    if not newest:
        future = len(catalog.future_dated(catalog.complete(backups), now))
        aside = f" ({future} dated in the future set aside)" if future else ""
        raise MaintError(
            f"no complete backup of {options.database or 'any database'} in {store.url}{aside}"
        )
    return [newest[name] for name in sorted(newest)]


def verify_host(source: Host, runner: Runner, options: DrillOptions) -> Result:
    """Drill every chosen backup of SOURCE on its target; each drill's failure is its own."""
    if not has_target(source, options):
        return Result(
            source.name, Status.SKIPPED, details={"reason": NO_TARGET}, summary=NO_TARGET
        )
    store = open_host_store(source)
    target = resolve_target(source, options)
    keys = chosen_backups(store, source, options)
    with runner_for(target) as target_runner, pg.reach(target, target_runner, TASK) as server:
        records = [_Drill(source, server, target_runner, store, options).run(key) for key in keys]
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
    def __init__(
        self, source: Host, server: pg.Postgres, runner: Runner, store: Store, options: DrillOptions
    ) -> None:
        self.source, self.server, self.runner, self.store = source, server, runner, store
        self.target = server.host
        self.options = options
        self.restore = source.settings.restore
        self.tmp_dir = self.target.settings.restore.tmp_dir
        self.checks = source.settings.restore_checks

    def run(self, key: BackupKey) -> DrillRecord:
        started = datetime.now(UTC)
        record = DrillRecord(
            key=key.key, database=key.database, source=self.source.name, target=self.target.name,
            scratch_database=scratch_name(key.database, started), started_at=started.isoformat(),
        )  # fmt: skip
        bound = log.bind(task=TASK, host=self.source.name, target=self.target.name, key=key.key)
        try:
            self._restore_and_check(key, record)
        except HostUnreachable:
            raise
        except MaintError as exc:
            record.reasons.append(mask_text(str(exc)))
        record.ok = not record.reasons
        record.finished_at = datetime.now(UTC).isoformat()
        self._record(key, record, bound)
        return record

    def _restore_and_check(self, key: BackupKey, record: DrillRecord) -> None:
        manifest = self._timed(record, "manifest_s", self._manifest, key)
        path = remote_path(self.tmp_dir, key)
        self._timed(
            record, "download_s", fetch_to_host, self.store, key, manifest, self.runner, path
        )
        try:
            self._timed(
                record, "create_s", create_scratch, self.server, record.scratch_database
            )
            try:
                self._timed(record, "restore_s", self._restore, manifest, record, path)
                record.restore_time_s = record.steps["restore_s"]
                self._timed(record, "checks_s", self._check, manifest, record)
            finally:
                failed = bool(record.reasons)
                record.kept = self.options.keep or (failed and self.restore.keep_failed)
                if not record.kept:
                    self._timed(
                        record, "drop_s", drop_scratch, self.server, record.scratch_database
                    )
        finally:
            self.runner.run(["rm", "-f", path])

    def _manifest(self, key: BackupKey) -> Manifest:
        try:
            return Manifest.from_json(self.store.get_bytes(key.manifest_key), key.manifest_key)
        except ManifestError:
            raise
        except MaintError as exc:
            raise ManifestError(f"{key.key}: manifest cannot be read: {exc}") from exc

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
        started = time.monotonic()
        try:
            return function(*args)
        finally:
            record.steps[step] = round(time.monotonic() - started, 3)
