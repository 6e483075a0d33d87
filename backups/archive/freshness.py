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
from backups.archive.layout import GLOBALS, is_labelled
from backups.stores import Store
from backups.stores.host import open_host_stores
from maintenance.inventory import Host

# A store whose newest backup is this much older than another store's missed a backup (the
# manifests of one backup reach its stores a moment apart, never minutes).
COPY_LAG = timedelta(minutes=5)


@dataclass(frozen=True)
class Lag:
    """A store (of several: copies) whose newest backup of a database is older than another's."""

    store: str
    behind: str  # the store holding the newest backup
    lag: timedelta | None  # None: the store has no complete backup of it at all


@dataclass(frozen=True)
class Freshness:
    database: str
    backup_age: timedelta | None  # None: no complete backup at all
    drill_age: timedelta | None  # None: never a passing drill
    future: tuple[str, ...] = ()  # keys of the objects dated in the future, set aside
    lagging: tuple[Lag, ...] = ()  # copies: stores that missed the newest backups


def backup_freshness(
    host: Host, now: datetime, databases: Sequence[str] = (), sources: Sequence[str] = ()
) -> list[Freshness]:
    """Ages for each of DATABASES (those that must be backed up), else each one a store holds
    (its labelled series, `app~partial`, left out), and for each of SOURCES (the units of
    backup.sources, which must be backed up too).

    Ages count from the newest complete backup not dated in the future, in whichever store
    holds it (copies); one dated within the clock-skew tolerance counts as 0s old, never a
    negative age. With several stores, one whose newest backup lags another's is named.
    """
    scans = [(store, catalog.scan(store, host.name)) for store in open_host_stores(host)]
    everything = [backup for _, backups in scans for backup in backups]
    held = {b.key.database for b in everything if not is_labelled(b.key.database)}
    names = list(databases) or sorted(held - {GLOBALS})
    names += [name for name in sources if name not in names]
    ages = []
    for name in names:
        newest: list[tuple[Store, datetime | None]] = []
        drills: list[datetime] = []
        future: set[str] = set()
        for store, backups in scans:
            mine = [backup for backup in backups if backup.key.database == name]
            present = catalog.current(mine, now)
            newest.append((store, present[-1].key.time if present else None))
            drilled = catalog.newest_passing_drill(store, present)
            drills += [drilled.key.time] if drilled else []
            future |= {backup.key.key for backup in catalog.future_dated(mine, now)}
        times = [time for _, time in newest if time is not None]
        ages.append(
            Freshness(
                database=name,
                backup_age=_age(now, max(times)) if times else None,
                drill_age=_age(now, max(drills)) if drills else None,
                future=tuple(sorted(future)),
                lagging=_lagging(newest),
            )
        )
    return ages


def _lagging(newest: list[tuple[Store, datetime | None]]) -> tuple[Lag, ...]:
    """The stores whose newest backup is more than COPY_LAG older than the newest store's."""
    present = [(store, time) for store, time in newest if time is not None]
    if not present:
        return ()
    leader, latest = max(present, key=lambda pair: pair[1])
    return tuple(
        Lag(store.url, leader.url, latest - time if time is not None else None)
        for store, time in newest
        if time is None or latest - time > COPY_LAG
    )


def _age(now: datetime, time: datetime) -> timedelta:
    return max(now - time, timedelta(0))
