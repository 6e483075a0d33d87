"""Command-line values put in place of a section's settings, validated as the inventory is.

A flag is typed by the same model as the key it overrides, so `--long-query-seconds 10min`
means what `long_query_seconds: 10min` means, and a flag that breaks a relation (a
`--crit-days` above the host's warn_days) is refused like the var would be.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import ValidationError

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


def flag_error(
    exc: ValidationError, model: type[Section], *, host: str, section: str
) -> ConfigError:
    """The problems of settings overridden from the command line, naming host and key."""
    lines = [
        f"host {host!r}: {key_path((section, *loc))} (with the command-line values): {words}"
        for loc, words in problems_of(exc, model)
    ]
    return ConfigError("\n  ".join(lines))
