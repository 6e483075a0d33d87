"""What a store holds for a host: complete backups (data + manifest) and incomplete leftovers.

One listing per host builds the whole picture; a data object without its manifest is
incomplete and never listed, restored or counted by retention.

A backup dated more than CLOCK_SKEW after this machine's clock (a control machine whose clock
once ran ahead, an object copied in from elsewhere) is *future-dated*: it is never "the newest".
Retention keeps it without counting it, health names it as a warning, drills and listings
skip past it to the newest backup that is not. The tolerance absorbs ordinary skew between the
machine that wrote a backup and the one reading it (NTP keeps them within seconds).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backups.archive.layout import MANIFEST_SUFFIX, VERIFY_SUFFIX, BackupKey, host_prefix, parse_key
from backups.stores import ObjectInfo, Store
from maintenance.errors import MaintError

CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of our clock a backup still counts as now


@dataclass(frozen=True)
class StoredBackup:
    """A data object and what sits beside it."""

    key: BackupKey
    size: int
    modified: datetime
    complete: bool
    verified: bool


def scan(store: Store, host: str, database: str | None = None) -> list[StoredBackup]:
    """Every backup object of HOST (or one database), oldest first; foreign keys are ignored."""
    return build(store.list(host_prefix(host, database)))


def build(objects: Iterable[ObjectInfo]) -> list[StoredBackup]:
    infos = {info.key: info for info in objects}
    backups = []
    for name, info in infos.items():
        key = parse_key(name)
        if key is None:
            continue
        backups.append(
            StoredBackup(
                key=key,
                size=info.size,
                modified=info.modified,
                complete=name + MANIFEST_SUFFIX in infos,
                verified=name + VERIFY_SUFFIX in infos,
            )
        )
    return sorted(backups, key=lambda backup: (backup.key.time, backup.key.key))


def complete(backups: Iterable[StoredBackup]) -> list[StoredBackup]:
    return [backup for backup in backups if backup.complete]


def in_future(time: datetime, now: datetime) -> bool:
    """True when TIME is more than CLOCK_SKEW after NOW (both tz-aware): a future-dated backup."""
    return time > now + CLOCK_SKEW


def current(backups: Iterable[StoredBackup], now: datetime) -> list[StoredBackup]:
    """The complete backups not dated in the future, in the given order: the last of an
    oldest-first list is the one health, drills and listings call the newest."""
    return [backup for backup in complete(backups) if not in_future(backup.key.time, now)]


def future_dated(backups: Iterable[StoredBackup], now: datetime) -> list[StoredBackup]:
    """The backup objects (complete or not) dated more than CLOCK_SKEW after NOW."""
    return [backup for backup in backups if in_future(backup.key.time, now)]


def drill_result(store: Store, backup: StoredBackup) -> dict[str, Any] | None:
    """The last drill record of BACKUP; None if it was never drilled or the record is unreadable."""
    if not backup.verified:
        return None
    try:
        record = json.loads(store.get_bytes(backup.key.verify_key))
    except (MaintError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def newest_passing_drill(store: Store, backups: Iterable[StoredBackup]) -> StoredBackup | None:
    """The newest complete backup whose last drill passed: retention must never remove it."""
    for backup in sorted(complete(backups), key=lambda b: b.key.time, reverse=True):
        record = drill_result(store, backup)
        if record and record.get("ok") is True:
            return backup
    return None


def free_key(stores: Sequence[Store], key: BackupKey) -> BackupKey:
    """KEY, moved a second later while an object of that name exists in any of STORES (two
    runs in one second): the key a new backup may be written under."""
    while any(
        store.stat(name) is not None for store in stores for name in (key.key, key.manifest_key)
    ):
        key = dataclasses.replace(key, time=key.time + timedelta(seconds=1))
    return key
