"""A host's backup store, opened from its typed `backup` settings.

The settings were checked at inventory load; opening the store adds the checks only the
backend can make (bucket names, endpoint URLs, part sizes for that service), and contacts
nothing.
"""

from __future__ import annotations

from backups.stores import Store, open_store
from maintenance.inventory import Host


def open_host_store(host: Host) -> Store:
    """HOST's `backup.store` with its store options. Raise ConfigError for bad options."""
    backup = host.settings.backup
    return open_store(backup.store_url, backup.store_options)
