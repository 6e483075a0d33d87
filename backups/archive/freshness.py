"""How old the newest complete backup and the newest passing drill are, per database.

health.check grades these ages, so a nightly job that silently stopped running turns the
check red instead of being found on the day a restore is needed. Backups dated in the future
(catalog.in_future) are set aside and named: a bogus 2099 timestamp must not read as "fresh"
for years, while the real newest backup quietly ages.

A query over the catalog, not a task: it lives beside the catalog so that health.check, a
procedure, reads it without importing the backup procedures (the import-linter layers).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    future: tuple[str, ...] = ()  # keys of the objects dated in the future, set aside


def backup_freshness(host: Host, now: datetime, databases: Sequence[str] = ()) -> list[Freshness]:
    """Ages for each of DATABASES (those that must be backed up), else each one the store holds.

    Ages count from the newest complete backup not dated in the future; one dated within the
    clock-skew tolerance counts as 0s old, never a negative age.
    """
    store = open_host_store(host)
    backups = catalog.scan(store, host.name)
    names = list(databases) or sorted({b.key.database for b in backups} - {GLOBALS})
    ages = []
    for name in names:
        mine = [backup for backup in backups if backup.key.database == name]
        present = catalog.current(mine, now)
        drilled = catalog.newest_passing_drill(store, present)
        ages.append(
            Freshness(
                database=name,
                backup_age=_age(now, present[-1].key.time) if present else None,
                drill_age=_age(now, drilled.key.time) if drilled else None,
                future=tuple(backup.key.key for backup in catalog.future_dated(mine, now)),
            )
        )
    return ages


def _age(now: datetime, time: datetime) -> timedelta:
    return max(now - time, timedelta(0))
