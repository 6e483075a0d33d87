"""A host's effective settings, each value with where it came from: default, group or host.

Ansible's merge replaces a top-level var whole (hash_behaviour=replace), so a value set under
`backup` comes from whichever group or host set `backup`; a value nobody wrote is a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .host import HostSettings


def effective(
    settings: HostSettings, raw: Mapping[str, Any], origins: Mapping[str, str]
) -> list[tuple[str, Any, str]]:
    """(dotted key, value, origin) for every product key of one host, in model order."""
    rows: list[tuple[str, Any, str]] = []
    dumped = settings.model_dump(mode="json")
    for key in HostSettings.model_fields:
        origin = origins.get(key, "host") if key in raw else "default"
        _walk(key, dumped.get(key), raw.get(key), origin, rows)
    return rows


def _walk(path: str, value: Any, raw: Any, origin: str, rows: list[tuple[str, Any, str]]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            given = isinstance(raw, Mapping) and key in raw
            _walk(
                f"{path}.{key}",
                inner,
                raw.get(key) if given else None,
                origin if given else "default",
                rows,
            )
        return
    rows.append((path, value, origin))
