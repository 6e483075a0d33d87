"""A host's backup stores, opened from its typed `backup` settings.

The settings were checked at inventory load, every rule of the stores' URLs and options
included (maintenance/settings/backup.py); opening a store trusts them and contacts nothing.
`backup.store` may list several stores (copies): each gets every backup.
"""

from __future__ import annotations

from backups.stores import ObjectNotFound, Store
from backups.stores.base import open_backup_store
from maintenance.inventory import Host


def open_host_store(host: Host) -> Store:
    """HOST's first `backup.store` with its store options, as checked at inventory load."""
    return open_host_stores(host)[0]


def open_host_stores(host: Host) -> list[Store]:
    """Every store of HOST's `backup.store`, in the order given, each with its options."""
    return [open_backup_store(copy) for copy in host.settings.backup.copies()]


def store_holding(host: Host, key: str) -> Store:
    """The first of HOST's stores that holds KEY (a complete backup: its manifest is there).

    Raise ObjectNotFound naming every store looked in when none does.
    """
    stores = open_host_stores(host)
    for store in stores:
        if store.stat(key) is not None:
            return store
    where = ", ".join(store.url for store in stores)
    raise ObjectNotFound(f"{key!r} is in none of the stores of {host.name} ({where})")
