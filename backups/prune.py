"""backup.prune: restic-style retention per host and database, over complete backups only.

Deletion order makes every step safe to interrupt: the manifest goes first (the backup turns
incomplete and is no longer listed or restored), then the data object and its drill record.
Incomplete objects are removed only once older than a grace period, since a running backup
looks exactly like one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from maintenance.inventory import Host
from maintenance.results import Result, Status

from . import catalog
from .layout import GLOBALS, host_prefix
from .retention import Policy, Snapshot, plan_retention
from .settings import BackupSettings
from .stores import Store, open_store

log = structlog.get_logger()


@dataclass(frozen=True)
class PruneOptions:
    dry_run: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()  # keep rules given as flags


def policy_for(host: Host, settings: BackupSettings, overrides: dict[str, Any]) -> Policy:
    """The host's `backup.retention` rules with flags on top. Raise ConfigError if empty."""
    where = f"host {host.name!r}: key 'backup.retention'"
    if overrides:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in overrides)
        where += f" with the flags {flags}"
    return Policy.from_mapping({**settings.retention, **overrides}, where=where)


def prune_database(
    host: Host,
    store: Store,
    settings: BackupSettings,
    database: str,
    *,
    dry_run: bool,
    overrides: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply retention to one database's backups; return what was kept (and why) and removed."""
    policy = policy_for(host, settings, overrides or {})
    now = now or datetime.now(UTC)
    backups = catalog.scan(store, host.name, database)
    complete = {backup.key.key: backup for backup in catalog.complete(backups)}
    decision = plan_retention(
        [Snapshot(key, backup.key.time) for key, backup in complete.items()], policy, now
    )
    keep = {snapshot.key: reasons for snapshot, reasons in decision.keep}
    remove = [snapshot.key for snapshot in decision.remove]
    drilled = catalog.newest_passing_drill(store, complete.values())
    if drilled is not None:
        keep.setdefault(drilled.key.key, []).append("newest passing drill")
        remove = [key for key in remove if key != drilled.key.key]
    stale = [
        backup for backup in backups
        if not backup.complete and now - backup.key.time > settings.incomplete_grace
    ]  # fmt: skip
    if not dry_run:
        for removed in remove:
            backup = complete[removed]
            for key in (backup.key.manifest_key, backup.key.key, backup.key.verify_key):
                store.delete(key)
        for backup in stale:
            store.delete(backup.key.key)
            store.delete(backup.key.verify_key)
    log.info(
        "retention applied",
        task="backup.prune",
        host=host.name,
        database=database,
        kept=len(keep),
        removed=len(remove),
        incomplete=len(stale),
        dry_run=dry_run,
    )
    return {
        "database": database,
        "kept": [{"key": key, "reasons": reasons} for key, reasons in keep.items()],
        "removed": remove,
        "incomplete_removed": [backup.key.key for backup in stale],
    }


def stored_databases(store: Store, host: str) -> list[str]:
    """Databases (and the globals) that have objects for HOST in the store."""
    names = {backup.key.database for backup in catalog.build(store.list(host_prefix(host)))}
    return sorted(names, key=lambda name: (name == GLOBALS, name))


def prune_host(host: Host, runner: object, options: PruneOptions) -> Result:
    """Retention over every database HOST has backups of, globals included."""
    settings = BackupSettings.for_host(host)
    overrides = dict(options.overrides)
    policy_for(host, settings, overrides)  # refuse an empty policy before touching anything
    store = open_store(settings.store_url, settings.store_options)
    outcomes = [
        prune_database(host, store, settings, name, dry_run=options.dry_run, overrides=overrides)
        for name in stored_databases(store, host.name)
    ]
    removed = sum(len(o["removed"]) + len(o["incomplete_removed"]) for o in outcomes)
    kept = sum(len(o["kept"]) for o in outcomes)
    verb = "would remove" if options.dry_run else "removed"
    status = Status.OK if options.dry_run or not removed else Status.CHANGED
    return Result(
        host.name,
        status,
        details={"store": store.url, "databases": outcomes},
        summary=f"{verb} {removed} backups, kept {kept}",
    )
