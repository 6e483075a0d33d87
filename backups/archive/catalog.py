"""What a store holds for a host: complete backups (data + manifest) and incomplete leftovers.

One listing per host builds the whole picture; a data object without its manifest is
incomplete and never listed, restored or counted by retention.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from backups.archive.layout import MANIFEST_SUFFIX, VERIFY_SUFFIX, BackupKey, host_prefix, parse_key
from backups.stores import ObjectInfo, Store
from maintenance.errors import MaintError


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
