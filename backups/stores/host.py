"""A host's backup store, opened from its typed `backup` settings.

The settings were checked at inventory load, every rule of the store's URL and options
included (maintenance/settings/backup.py); opening the store trusts them and contacts nothing.
"""

from __future__ import annotations

from backups.stores import Store
from backups.stores.base import open_backup_store
from maintenance.inventory import Host


def open_host_store(host: Host) -> Store:
    """HOST's `backup.store` with its store options, as checked at inventory load."""
    return open_backup_store(host.settings.backup)
