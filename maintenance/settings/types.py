"""Value types of the settings model, each refusing what YAML lets slip through.

pydantic's lax mode would take `true` as 1 and `"10"` as ten; YAML writes a bool for
`yes`, so every number here refuses bools, and every type says in words what it expects.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic import BaseModel as _BaseModel

from ..units import parse_size as _parse_size
from .durations import EXAMPLES, Age, duration_words, parse_age, parse_duration

# The longest wait the product hands on: PostgreSQL's timeouts are int4 milliseconds, and so
# are poll() and socket timeouts, which a longer subprocess or SSH timeout would overflow.
MAX_MILLISECONDS = 2_147_483_647
MAX_TIMEOUT_S = MAX_MILLISECONDS // 1000


class Section(_BaseModel):
    """A section of the product's vars: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _yes_no(value: bool) -> str:
    """A bool as the YAML said it: `yes`, `on` and `true` all load as True."""
    return f"{str(value).lower()} (a yes/no value)"


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {_yes_no(value)}")
    if isinstance(value, str):
        try:
            return float(value.strip()) if "." in value else int(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    return value


def _whole(value: Any) -> Any:
    value = _number(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole number, got {value!r}")
        return int(value)
    return value


def _duration(value: Any) -> timedelta:
    return parse_duration(value)


def _deletion_age(value: Any) -> Age:
    age = parse_age(value, deletes=True)
    if not age.months and age.seconds <= 0:
        raise ValueError(f"must be longer than zero, got {value!r}")
    return age


def _timeout(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(
            f"expected a number of seconds or a duration like 30s, got {_yes_no(value)}"
        )
    seconds = parse_duration(value).total_seconds()
    if seconds < 0:
        raise ValueError(f"a timeout cannot be negative, got {value!r}")
    if seconds > MAX_TIMEOUT_S:
        raise ValueError(
            f"too long for a timeout: at most {duration_words(MAX_TIMEOUT_S)} "
            f"({MAX_TIMEOUT_S} seconds; 0 means none), got {value!r}"
        )
    return seconds


def _size(value: Any) -> int:
    from ..errors import ConfigError

    if isinstance(value, bool):
        raise ValueError(f"expected a size like 500MB, 2GB or 1GiB, got {_yes_no(value)}")
    try:
        return _parse_size(value)
    except ConfigError as exc:
        raise ValueError(str(exc).removeprefix("size: ")) from None


def _one_or_many(value: Any) -> Any:
    """One string stands for a list of it (`disk_paths: /var`, `ssh_known_hosts: FILE`)."""
    return [value] if isinstance(value, str) else value


_DURATION_SCHEMA = {
    "x-type": "duration",
    "anyOf": [{"type": "string"}, {"type": "number", "minimum": 0}],
    "description": f"a duration: {EXAMPLES}; a bare number is seconds, m is minutes",
}
_AGE_SCHEMA = {
    "x-type": "age that deletes (no bare number or m)",
    "type": "string",
    "pattern": r"^\s*(\d+(\.\d+)?\s*(y|yr|yrs|years?|mo|mon|months?|w|wks?|weeks?|d|days?"
    r"|h|hrs?|hours?|min|mins|minutes?|s|secs?|seconds?)\s*)+$",
    "description": "an age selecting data to delete: 90d, 12mo, 1y, 6h, 30min "
    "(a bare number or a bare m is ambiguous and refused)",
}

Number = Annotated[float, BeforeValidator(_number)]
Whole = Annotated[int, BeforeValidator(_whole)]
Count = Annotated[int, Field(ge=0), BeforeValidator(_whole)]
Positive = Annotated[int, Field(ge=1), BeforeValidator(_whole)]
Percent = Annotated[float, Field(ge=0, le=100), BeforeValidator(_number)]
Ratio = Annotated[float, Field(ge=0, le=1), BeforeValidator(_number)]
Port = Annotated[int, Field(ge=1, le=65535), BeforeValidator(_whole)]
Duration = Annotated[timedelta, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
DeletionAge = Annotated[Age, BeforeValidator(_deletion_age), WithJsonSchema(_AGE_SCHEMA)]
Timeout = Annotated[
    float,
    BeforeValidator(_timeout),
    WithJsonSchema(
        {**_DURATION_SCHEMA, "x-type": "timeout", "description": "seconds or a duration; 0 = none"}
    ),
]
Size = Annotated[
    int,
    BeforeValidator(_size),
    WithJsonSchema(
        {"x-type": "size", "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}],
         "description": "a size: 500MB, 2GB, 1GiB or a number of bytes"}
    ),
]  # fmt: skip


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_non_empty)]
OneOrMany = Annotated[
    list[Text],
    BeforeValidator(_one_or_many),
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
         "x-type": "path or list of paths"}
    ),
]  # fmt: skip

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"expected the name of an environment variable, got {value!r}")
    return value


# A secret is named by the environment variable holding it, never written in the inventory.
EnvName = Annotated[str, AfterValidator(_env_name)]


def url_of(*schemes: str) -> Any:
    """A validator of a URL with one of SCHEMES and a host (and a port in range, if any)."""

    def check(value: str) -> str:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError as exc:
            raise ValueError(f"expected a URL, got {value!r}: {exc}") from None
        if parts.scheme.lower() not in schemes or not parts.hostname:
            said = " or ".join(f"{scheme}://" for scheme in schemes)
            raise ValueError(f"expected a {said} URL with a host, got {value!r}")
        return value

    return AfterValidator(check)
