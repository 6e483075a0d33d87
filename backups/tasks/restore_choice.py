"""`restore.db --backup latest`: which backup that is, decided once, before anything happens.

`latest` is the newest complete backup of --database taken on --target; `HOST/DATABASE/latest`
names another host's or database's (prod's last night's backup, restored on staging). Backups
dated in the future are passed over, as drills and health do, and so are partial backups
(backup.db --table), which live under their own name (`<database>~partial`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from backups.archive import catalog
from backups.archive.layout import BackupKey, parse_key
from backups.stores import Store
from maintenance.errors import ConfigError, MaintError

LATEST = "latest"


def latest_of(backup: str, target: str, database: str) -> tuple[str, str] | None:
    """(host, database) whose newest backup BACKUP asks for, or None for a backup's key."""
    if backup == LATEST:
        return target, database
    host, slash, rest = backup.partition("/")
    name, slash2, word = rest.rpartition("/")
    if slash and slash2 and word == LATEST and host and name:
        return host, name
    return None


def check_backup_flag(backup: str, target: str, database: str) -> None:
    """Refuse a --backup that is neither a backup key nor a `latest` form."""
    if latest_of(backup, target, database) is None and parse_key(backup) is None:
        raise ConfigError(
            f"--backup {backup!r} is not a backup key (see backup.list), 'latest' "
            "or HOST/DATABASE/latest"
        )


def newest_copy(stores: Sequence[Store], host: str, database: str) -> tuple[BackupKey, Store]:
    """The newest complete backup of DATABASE from HOST in any of STORES (backup.store a
    list: a store that missed a night is passed over), and the first store holding it.
    Raise MaintError if none holds one."""
    now = datetime.now(UTC)
    best: tuple[BackupKey, Store] | None = None
    for store in stores:
        backups = catalog.current(catalog.scan(store, host, database), now)
        if backups and (best is None or backups[-1].key.time > best[0].time):
            best = backups[-1].key, store
    if best is None:
        where = ", ".join(store.url for store in stores)
        raise MaintError(f"no complete backup of {host}/{database} in {where}")
    return best
