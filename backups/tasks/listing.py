"""backup.list: the complete backups of each host and database, newest first.

A backup dated in the future (catalog.in_future) is listed with its `future` flag and the age
"in the future", never a negative age, and the summary's "newest" is the newest one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backups.archive import catalog
from backups.sources import backup_kind, unit_kinds
from backups.stores import Store
from backups.stores.host import open_host_stores
from backups.tasks.source_backup import chosen_sources
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.units import format_duration, format_size


@dataclass(frozen=True)
class ListOptions:
    database: str | None = None
    sources: tuple[str, ...] = ()  # --source: only these sources' backups (and --database's)


def _drill_text(record: dict | None) -> str:
    """'passed 2026-11-23 19:40Z', 'FAILED ...' or 'never' for the listing's drill column."""
    if record is None:
        return "never"
    when = str(record.get("finished_at", ""))[:16].replace("T", " ")
    return f"passed {when}Z" if record.get("ok") else f"FAILED {when}Z"


def _age_text(now: datetime, time: datetime) -> str:
    """'3h05m'; '0s' for a backup a little ahead of our clock; 'in the future' beyond skew."""
    if catalog.in_future(time, now):
        return "in the future"
    return format_duration(max(now - time, timedelta(0)).total_seconds())


def list_host(host: Host, runner: object, options: ListOptions) -> Result:
    """One row per complete backup of HOST and store; incomplete objects are counted, never
    listed. With several stores (copies) each row names its store, newest first across them."""
    stores = open_host_stores(host)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    backups: list[catalog.StoredBackup] = []
    wanted = _wanted(host, options)
    kinds = unit_kinds(host)
    for store in stores:
        mine = catalog.scan(store, host.name, None if options.sources else options.database)
        mine = [backup for backup in mine if wanted is None or backup.key.database in wanted]
        rows += _rows(store, mine, now, kinds, named=len(stores) > 1)
        backups += mine
    rows.sort(key=lambda row: row["time"], reverse=True)  # stable: store order within a time
    backups.sort(key=lambda backup: backup.key.time)
    incomplete = sum(not backup.complete for backup in backups)
    databases = sorted({row["database"] for row in rows})
    summary = f"{len(rows)} backups of {len(databases)} databases"
    if len(stores) > 1:
        summary += f" in {len(stores)} stores"
    present = catalog.current(backups, now)
    if present:
        summary += f", newest {_age_text(now, present[-1].key.time)} ago"
    future = sum(row["future"] for row in rows)
    if future:
        summary += f", {future} dated in the future (not counted as newest)"
    if incomplete:
        summary += f", {incomplete} incomplete"
    details: dict[str, Any] = {"store": stores[0].url, "rows": rows, "incomplete": incomplete}
    if len(stores) > 1:
        details["stores"] = [store.url for store in stores]
    return Result(host.name, Status.OK, details=details, summary=summary)


def _wanted(host: Host, options: ListOptions) -> set[str] | None:
    """The backup names --source and --database select; None: every one."""
    if not options.sources:
        return None
    units = {unit for source in chosen_sources(host, options.sources) for unit in source.units()}
    return units | ({options.database} if options.database else set())


def _rows(
    store: Store,
    backups: list[catalog.StoredBackup],
    now: datetime,
    kinds: dict[str, str],
    *,
    named: bool,
) -> list[dict[str, Any]]:
    """The listing's rows of one store's complete BACKUPS, newest first; NAMED adds a store
    column (several stores)."""
    return [
        {
            **({"store": store.url} if named else {}),
            "database": backup.key.database,
            "kind": backup_kind(backup.key, kinds),
            "time": backup.key.time.strftime("%Y-%m-%d %H:%M:%SZ"),
            "age": _age_text(now, backup.key.time),
            "future": catalog.in_future(backup.key.time, now),
            "size": format_size(backup.size),
            "bytes": backup.size,
            "codec": backup.key.codec or "none",
            "drill": "-"
            if backup.key.is_globals
            else _drill_text(catalog.drill_result(store, backup)),
            "key": backup.key.key,
        }
        for backup in reversed(catalog.complete(backups))
    ]
