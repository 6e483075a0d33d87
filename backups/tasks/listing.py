"""backup.list: the complete backups of each host and database, newest first.

A backup dated in the future (catalog.in_future) is listed with its `future` flag and the age
"in the future", never a negative age, and the summary's "newest" is the newest one that is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backups.archive import catalog
from backups.stores.host import open_host_store
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.units import format_duration, format_size


@dataclass(frozen=True)
class ListOptions:
    database: str | None = None


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
    """One row per complete backup of HOST; incomplete objects are counted, never listed."""
    store = open_host_store(host)
    backups = catalog.scan(store, host.name, options.database)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "database": backup.key.database,
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
    incomplete = sum(not backup.complete for backup in backups)
    databases = sorted({row["database"] for row in rows})
    summary = f"{len(rows)} backups of {len(databases)} databases"
    present = catalog.current(backups, now)
    if present:
        summary += f", newest {_age_text(now, present[-1].key.time)} ago"
    future = sum(row["future"] for row in rows)
    if future:
        summary += f", {future} dated in the future (not counted as newest)"
    if incomplete:
        summary += f", {incomplete} incomplete"
    return Result(
        host.name,
        Status.OK,
        details={"store": store.url, "rows": rows, "incomplete": incomplete},
        summary=summary,
    )
