"""A host's effective settings, each value with where it came from: default, group or host.

Ansible's merge replaces a top-level var whole (hash_behaviour=replace), so a value set under
`backup` comes from whichever group or host set `backup`; a value nobody wrote is a default.
Values are shown as a user writes them: durations in the grammar, keys by their inventory name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from .durations import Age
from .host import HostSettings
from .logs import CreateSpec

Row = tuple[str, Any, str]


def effective(
    settings: HostSettings, raw: Mapping[str, Any], origins: Mapping[str, str]
) -> list[Row]:
    """(dotted key, value, origin) for every product key of one host, in model order."""
    rows: list[Row] = []
    for name, field in HostSettings.model_fields.items():
        key = field.alias or name
        origin = origins.get(key, "host") if key in raw else "default"
        _walk(key, getattr(settings, name), raw.get(key), origin, rows)
    return rows


def _walk(path: str, value: Any, raw: Any, origin: str, rows: list[Row]) -> None:
    if not isinstance(value, BaseModel):
        rows.append((path, written(value), origin))
        return
    for name, field in type(value).model_fields.items():
        key = field.alias or name
        if isinstance(raw, Mapping):
            given = key in raw
            inner_origin, inner_raw = (origin, raw[key]) if given else ("default", None)
        else:  # written in a short form (a list for a mapping): all of it is the parent's
            inner_origin, inner_raw = origin, None
        _walk(f"{path}.{key}", getattr(value, name), inner_raw, inner_origin, rows)


def written(value: Any) -> Any:
    """VALUE as the inventory would write it: '26h' for a duration, '12mo' for an age."""
    if isinstance(value, Age):
        return value.text
    if isinstance(value, CreateSpec):
        return value.as_written() or True
    if isinstance(value, timedelta):
        return _duration(value)
    if isinstance(value, BaseModel):
        return {
            (field.alias or name): written(getattr(value, name))
            for name, field in type(value).model_fields.items()
        }
    if isinstance(value, list | tuple):
        return [written(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): written(item) for key, item in value.items()}
    return value


def _duration(length: timedelta) -> str:
    """'26h', '1d2h30min', '0.5s': the largest whole units, as the grammar reads them back."""
    seconds = length.total_seconds()
    if not seconds.is_integer():
        return f"{seconds:g}s"
    rest, parts = int(seconds), []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"
