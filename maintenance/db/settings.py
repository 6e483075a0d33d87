"""The db tasks' knobs for one run: the host's typed `postgres.maintenance`, flags over it.

Flags are parsed by the same model as the inventory's values, so `--lock-timeout 5s` and
`lock_timeout: 5s` mean the same and are refused in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from ..errors import ConfigError
from ..inventory import Host
from ..settings.postgres import MaintenanceSettings, PurgeRule
from ..settings.problems import problems_of

M = TypeVar("M", bound=BaseModel)


def settings_for(host: Host, overrides: Mapping[str, Any] | None = None) -> MaintenanceSettings:
    """HOST's `postgres.maintenance` with OVERRIDES (parsed flags, see `parse_flags`) over it.

    Raise ConfigError if the flags contradict the host's values (the model's relations).
    """
    settings = host.settings.postgres.maintenance
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if not given:
        return settings
    merged = settings.model_copy(update=given)
    problems = merged.contradictions()
    if problems:
        raise ConfigError(f"host {host.name!r}: with the flags given: " + "; ".join(problems))
    return merged


def parse_flags(**flags: tuple[str, Any]) -> dict[str, Any]:
    """{setting: parsed value} for each flag given, passed as setting=(flag name, raw value).

    Each value goes through its key's type in the model, so a flag is read exactly as the
    same key in the inventory. Raise ConfigError naming every bad flag.
    """
    parsed, problems = {}, []
    for key, (flag, raw) in flags.items():
        if raw in (None, ""):
            continue
        field = MaintenanceSettings.model_fields[key]
        annotation: Any = Annotated[(field.annotation, *field.metadata)]  # the key's own type
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        try:
            parsed[key] = adapter.validate_python(raw)
        except ValidationError as exc:
            problems += [f"--{flag}: {words}" for _, words in problems_of(exc, MaintenanceSettings)]
    if problems:
        raise ConfigError("\n  ".join(problems))
    return parsed


def rule_from_flags(
    *, table: str, column: str, older_than: str, schema: str | None, database: str | None
) -> PurgeRule:
    """The purge rule of `db.purge --table ...`. Raise ConfigError naming the bad flag."""
    values = {"table": table, "column": column, "older_than": older_than}
    values.update({key: value for key, value in (("schema", schema), ("database", database))
                   if value})  # fmt: skip
    names = {"older_than": "older-than"}
    return _validated(PurgeRule, values, names)


def _validated(model: type[M], values: dict[str, Any], flags: dict[str, str]) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = [
            f"--{flags.get(str(loc[0]), str(loc[0])) if loc else 'flags'}: {words}"
            for loc, words in problems_of(exc, model)
        ]
        raise ConfigError("\n  ".join(problems)) from None
