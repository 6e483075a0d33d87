"""Command-line values put in place of a section's settings, validated as the inventory is.

A flag is typed by the same model as the key it overrides, so `--long-query-seconds 10min`
means what `long_query_seconds: 10min` means, and a flag that breaks a relation (a
`--crit-days` above the host's warn_days) is refused like the var would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigError
from .problems import key_path, problems_of
from .types import Section

S = TypeVar("S", bound=Section)


def overridden(section: S, values: Mapping[str, Any]) -> S:
    """SECTION with VALUES (key -> value as a user writes it) in place. Raise ValidationError.

    The other keys keep their parsed values; a duration goes back as its seconds, which the
    duration grammar reads as the same length.
    """
    current = {
        name: value.total_seconds() if isinstance(value, timedelta) else value
        for name, value in section
    }
    return type(section).model_validate({**current, **values})


def checked_flags(model: type[Section], values: Mapping[str, Any]) -> None:
    """Each of VALUES (key -> value as given; None: not given) through its own key's type.
    Raise ConfigError naming the flags.

    Run when a task's plan is built, which is also when the scheduler checks a job's `args`
    at load: `warn_days: abc` in a schedule is refused then, not at the job's first run. How
    a value relates to the host's other keys (crit beyond warn) waits for the host.
    """
    problems = []
    for name, value in values.items():
        if value is None:
            continue
        field = model.model_fields[name]
        # Any: pydantic's own stubs type the annotation differently from one release to the next.
        annotation: Any = (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            flag = "--" + name.replace("_", "-")
            problems += [f"{flag}: {words}" for _, words in problems_of(exc, model)]
    if problems:
        raise ConfigError("; ".join(problems))


def flag_error(
    exc: ValidationError, model: type[Section], *, host: str, section: str
) -> ConfigError:
    """The problems of settings overridden from the command line, naming host and key."""
    lines = [
        f"host {host!r}: {key_path((section, *loc))} (with the command-line values): {words}"
        for loc, words in problems_of(exc, model)
    ]
    return ConfigError("\n  ".join(lines))
