"""backup.list: the complete backups of each host and database, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

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


def list_host(host: Host, runner: object, options: ListOptions) -> Result:
    """One row per complete backup of HOST; incomplete objects are counted, never listed."""
    store = open_host_store(host)
    backups = catalog.scan(store, host.name, options.database)
    now = datetime.now(UTC)
    rows = [
        {
            "database": backup.key.database,
            "time": backup.key.time.strftime("%Y-%m-%d %H:%M:%SZ"),
            "age": format_duration((now - backup.key.time).total_seconds()),
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
    if rows:
        summary += f", newest {rows[0]['age']} ago"
    if incomplete:
        summary += f", {incomplete} incomplete"
    return Result(
        host.name,
        Status.OK,
        details={"store": store.url, "rows": rows, "incomplete": incomplete},
        summary=summary,
    )
