"""Backup sources beyond PostgreSQL (`backup.sources`): one module per kind behind one
interface (base.Source). The kind's module is imported only when a host has such a source."""

from __future__ import annotations

import importlib

from backups.archive.layout import BackupKey
from maintenance.inventory import Host
from maintenance.settings.sources import SourceBase

from .base import Source

# kind -> "module:class", imported on first use (a host without redis sources never loads it)
KINDS = {
    "sqlite": "backups.sources.sqlite:SqliteSource",
    "command": "backups.sources.command:CommandSource",
    "redis": "backups.sources.redis:RedisSource",
    "mysql": "backups.sources.mysql:MysqlSource",
}


def source_for(host: Host, settings: SourceBase) -> Source:
    """SETTINGS (one `backup.sources` entry of HOST) as its kind's Source."""
    module, _, name = KINDS[settings.kind].partition(":")
    kind: type[Source] = getattr(importlib.import_module(module), name)
    return kind(host, settings)


def host_sources(host: Host) -> list[Source]:
    """HOST's `backup.sources`, each as its kind's Source, in the order written."""
    return [source_for(host, settings) for settings in host.settings.backup.sources]


def unit_kinds(host: Host) -> dict[str, str]:
    """Backup name -> kind, for every unit of HOST's sources (from the settings alone)."""
    return {unit: source.kind for source in host_sources(host) for unit in source.units()}


def backup_kind(key: BackupKey, kinds: dict[str, str]) -> str:
    """What made the backup at KEY, from its name alone (no manifest read): a source's kind by
    KINDS (unit_kinds), else `globals` or `postgres`; a source no longer configured shows
    its object's extension."""
    if key.database in kinds:
        return kinds[key.database]
    if key.is_globals:
        return "globals"
    return "postgres" if key.kind == "dump" else key.kind
