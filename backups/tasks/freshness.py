"""How old the newest complete backup and the newest passing drill are, per database.

health.check grades these ages, so a nightly job that silently stopped running turns the
check red instead of being found on the day a restore is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backups.archive import catalog
from backups.archive.layout import GLOBALS
from backups.stores.host import open_host_store
from maintenance.inventory import Host


@dataclass(frozen=True)
class Freshness:
    database: str
    backup_age: timedelta | None  # None: no complete backup at all
    drill_age: timedelta | None  # None: never a passing drill


def backup_freshness(host: Host, now: datetime) -> list[Freshness]:
    """Ages for each database in `postgres.databases`, else each one the store holds."""
    store = open_host_store(host)
    backups = catalog.scan(store, host.name)
    configured = host.settings.postgres.databases or []
    names = configured or sorted({b.key.database for b in backups} - {GLOBALS})
    ages = []
    for name in names:
        mine = [backup for backup in backups if backup.key.database == name]
        complete = catalog.complete(mine)
        drilled = catalog.newest_passing_drill(store, mine)
        ages.append(
            Freshness(
                database=name,
                backup_age=now - complete[-1].key.time if complete else None,
                drill_age=now - drilled.key.time if drilled else None,
            )
        )
    return ages
