"""A host's backup settings, read once from its `backup` vars and validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from maintenance.errors import ConfigError
from maintenance.inventory import Host
from maintenance.units import parse_duration, parse_size

from .codecs import DEFAULT_CODEC, check_codec, check_level

DEFAULT_STORE = "~/.local/share/maint/backups"
# Restores write private files (umask 077, unique names) here on the restoring host.
DEFAULT_RESTORE_TMP_DIR = "/var/tmp"  # noqa: S108


def restore_tmp_dir(host: Host) -> str:
    """Where a restore on HOST keeps the fetched dump: `restore.tmp_dir`, else /var/tmp."""
    return str((host.var("restore") or {}).get("tmp_dir", DEFAULT_RESTORE_TMP_DIR))


@dataclass(frozen=True)
class BackupSettings:
    store_url: str
    store_options: dict[str, Any]
    codec: str
    level: int | None
    exact_count_max_bytes: int
    min_size_ratio: float
    incomplete_grace: timedelta
    retention: dict[str, Any]

    @classmethod
    def for_host(cls, host: Host) -> BackupSettings:
        raw = host.var("backup") or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"host {host.name!r}: key 'backup': expected a mapping")
        where = f"host {host.name!r}: key 'backup"
        ratio = raw.get("min_size_ratio", 0.5)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
            raise ConfigError(f"{where}.min_size_ratio': expected a number from 0 to 1")
        retention = raw.get("retention") or {}
        if not isinstance(retention, dict):
            raise ConfigError(f"{where}.retention': expected a mapping of keep rules")
        store = str(raw.get("store") or DEFAULT_STORE)
        if "://" not in store:
            store = str(Path(store).expanduser())
        codec = check_codec(str(raw.get("codec", DEFAULT_CODEC)))
        return cls(
            store_url=store,
            store_options=dict(raw),
            codec=codec,
            level=check_level(codec, raw.get("level"), f"{where}.level'"),
            exact_count_max_bytes=parse_size(
                raw.get("exact_count_max_size", "2GB"), f"{where}.exact_count_max_size'"
            ),
            min_size_ratio=float(ratio),
            incomplete_grace=parse_duration(
                raw.get("incomplete_grace", "2d"), f"{where}.incomplete_grace'"
            ),
            retention=retention,
        )
