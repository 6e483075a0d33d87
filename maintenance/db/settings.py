"""Thresholds and timeouts of database maintenance: defaults < `postgres.maintenance` < flags.

Everything is parsed and checked once, here, so the procedures never re-check a dict; one
ConfigError lists every problem with the host and key it comes from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import ConfigError
from ..inventory import Host
from ..units import parse_duration, parse_size

VARS_KEY = "postgres.maintenance"


@dataclass(frozen=True)
class PurgeRule:
    """Delete rows of TABLE whose COLUMN is older than OLDER_THAN, BATCH rows at a time."""

    table: str
    column: str
    older_than: timedelta
    schema: str = "public"
    database: str | None = None
    batch: int | None = None


@dataclass(frozen=True)
class Settings:
    """Every knob of the db tasks for one host, parsed."""

    lock_timeout: timedelta
    statement_timeout: timedelta
    vacuum_dead_ratio: float
    vacuum_dead_tuples: int
    vacuum_min_dead_tuples: int
    analyze_modified_ratio: float
    analyze_min_modifications: int
    reindex_bloat_ratio: float
    reindex_min_size: int
    purge_batch: int
    purge_pause: timedelta
    long_query_age: timedelta
    idle_age: timedelta
    purge: tuple[PurgeRule, ...] = ()


def _ratio(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a ratio between 0 and 1, got {value!r}")
    try:
        ratio = float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a ratio between 0 and 1, got {value!r}") from None
    if not 0 <= ratio <= 1:
        raise ConfigError(f"{where}: expected a ratio between 0 and 1, got {value!r}")
    return ratio


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ConfigError(f"{where}: expected a whole number >= 0, got {value!r}")
    return int(str(value).strip())


def _positive_count(value: Any, where: str) -> int:
    count = _count(value, where)
    if count == 0:
        raise ConfigError(f"{where}: must be at least 1")
    return count


def _duration(value: Any, where: str) -> timedelta:
    return parse_duration(value, where)


def _size(value: Any, where: str) -> int:
    return parse_size(value, where)


_PARSERS: dict[str, tuple[Callable[[Any, str], Any], Any]] = {
    "lock_timeout": (_duration, "5s"),
    "statement_timeout": (_duration, "1h"),
    "vacuum_dead_ratio": (_ratio, 0.1),
    "vacuum_dead_tuples": (_count, 100_000),
    "vacuum_min_dead_tuples": (_count, 1_000),
    "analyze_modified_ratio": (_ratio, 0.1),
    "analyze_min_modifications": (_count, 1_000),
    "reindex_bloat_ratio": (_ratio, 0.3),
    "reindex_min_size": (_size, "10MB"),
    "purge_batch": (_positive_count, 10_000),
    "purge_pause": (_duration, "0.5s"),
    "long_query_age": (_duration, "5m"),
    "idle_age": (_duration, "10m"),
}
DEFAULTS = {key: default for key, (_, default) in _PARSERS.items()}


def parse_setting(key: str, value: Any, where: str) -> Any:
    """Parse one setting's raw VALUE. Raise ConfigError naming WHERE if it is not valid."""
    parser, _ = _PARSERS[key]
    return parser(value, where)


def settings_for(host: Host, overrides: Mapping[str, Any] | None = None) -> Settings:
    """HOST's settings: defaults < its `postgres.maintenance` vars < parsed OVERRIDES (flags).

    Raise ConfigError listing every bad or unknown key.
    """
    raw = host.var(VARS_KEY) or {}
    where = f"host {host.name!r}: key '{VARS_KEY}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}': expected a mapping, got {type(raw).__name__}")
    problems = [
        f"{where}.{key}': unknown setting (known: {', '.join(sorted([*_PARSERS, 'purge']))})"
        for key in raw
        if key not in _PARSERS and key != "purge"
    ]
    values: dict[str, Any] = {}
    for key, (parser, default) in _PARSERS.items():
        try:
            values[key] = parser(raw.get(key, default), f"{where}.{key}'")
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        values["purge"] = purge_rules(raw.get("purge") or [], f"{where}.purge'")
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n  ".join(problems))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return Settings(**values)


_RULE_KEYS = {"database", "schema", "table", "column", "older_than", "batch"}


def purge_rules(raw: Any, where: str) -> tuple[PurgeRule, ...]:
    """Parse the `purge` list of a host's vars. Raise ConfigError listing every problem."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: expected a list of rules, got {type(raw).__name__}")
    rules, problems = [], []
    for number, item in enumerate(raw, 1):
        at = f"{where}, rule {number}"
        if not isinstance(item, Mapping):
            problems.append(f"{at}: expected a mapping, got {type(item).__name__}")
            continue
        problems += [f"{at}: unknown key {key!r}" for key in item if key not in _RULE_KEYS]
        missing = [key for key in ("table", "column", "older_than") if not item.get(key)]
        problems += [f"{at}: key {key!r} is required" for key in missing]
        if missing:
            continue
        try:
            rules.append(
                purge_rule(
                    table=item["table"],
                    column=item["column"],
                    older_than=item["older_than"],
                    schema=item.get("schema"),
                    database=item.get("database"),
                    batch=item.get("batch"),
                    where=at,
                )
            )
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n  ".join(problems))
    return tuple(rules)


def purge_rule(
    *,
    table: Any,
    column: Any,
    older_than: Any,
    schema: Any = None,
    database: Any = None,
    batch: Any = None,
    where: str,
) -> PurgeRule:
    """One purge rule from flags or vars. A zero age is refused: it would empty the table."""
    age = parse_duration(older_than, f"{where}: older_than")
    if age <= timedelta(0):
        raise ConfigError(f"{where}: older_than must be more than zero, got {older_than!r}")
    return PurgeRule(
        table=str(table),
        column=str(column),
        older_than=age,
        schema=str(schema) if schema else "public",
        database=str(database) if database else None,
        batch=_positive_count(batch, f"{where}: batch") if batch is not None else None,
    )
