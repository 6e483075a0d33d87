"""Sizes as people write them in vars and flags ('2GB', '512MiB'), and figures for people.

Durations have their own grammar in maintenance.settings.durations.
"""

from __future__ import annotations

import re

from .errors import ConfigError

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(value: str | int, what: str = "size") -> int:
    """Parse '2GB', '512MiB', '10k' or a number of bytes. Raise ConfigError naming WHAT."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.fullmatch(str(value).strip().lower())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ConfigError(f"{what}: expected a size like 500MB, 2GB or 1GiB, got {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def format_size(size: float) -> str:
    """Bytes for people: '1.4 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_duration(seconds: float) -> str:
    """Seconds for people: '45s', '3m20s', '5h02m', '3d4h'."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
