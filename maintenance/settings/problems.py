"""pydantic's validation errors, said in the inventory's own words.

Each problem names the inventory file, where the value was set (a host, or the group whose
vars a host inherited it from), the dotted key path as written (`logs[2].delete_after`),
what is expected and what was given; an unknown key gets a did-you-mean.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

Loc = tuple[int | str, ...]


def key_path(loc: Loc) -> str:
    """('logs', 2, 'delete_after') -> 'logs[2].delete_after' (list indexes as written, from 0)."""
    text = ""
    for part in loc:
        if part == "[key]":  # pydantic's mark of an error in a mapping's key, not its value
            continue
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (optimal string alignment): a swap of two letters is one."""
    rows = [list(range(len(b) + 1))]
    for i, char_a in enumerate(a, 1):
        row = [i]
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            best = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                best = min(best, rows[-2][j - 2] + 1)
            row.append(best)
        rows.append(row)
    return rows[-1][-1]


def closest(word: str, known: Iterable[str], within: int = 2) -> str | None:
    """The known word at most WITHIN edits from WORD (the nearest; ties by name), else None."""
    scored = sorted((edit_distance(word.lower(), k.lower()), k) for k in known)
    return scored[0][1] if scored and scored[0][0] <= within else None


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    """'unknown key; did you mean 'store'?' or the section's known keys when none is close."""
    guess = closest(key, known)
    if guess:
        return f"unknown key {key!r}; did you mean {guess!r}?"
    return f"unknown key {key!r} (known keys: {', '.join(sorted(known))})"


_BUILTIN_ERRORS = frozenset(typing.get_args(ErrorType))


def moved(error: Any, loc: Loc, known: Sequence[str] | None = None) -> InitErrorDetails:
    """One of pydantic's errors, put at LOC, ready to raise again from a validator (which
    places it under the validator's own location).

    An unknown key is said with KNOWN's did-you-mean now: where the error was moved from a
    path the model cannot walk (a list form, a union), `known_keys` could not find them later.
    """
    kind = error["type"]
    if kind == "extra_forbidden" and known is not None:
        words = unknown_key_message(str(loc[-1]), known)
        kind = PydanticCustomError("unknown_key", "{words}", {"words": words})
    if isinstance(kind, str) and kind not in _BUILTIN_ERRORS:
        kind = PydanticCustomError(kind, "{words}", {"words": error["msg"]})
    detail: InitErrorDetails = {"type": kind, "loc": loc, "input": error["input"]}
    if "ctx" in error and isinstance(kind, str):
        detail["ctx"] = error["ctx"]
    return detail


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `list[Rule] | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    if origin in (list, tuple, dict, typing.Union, types.UnionType) or origin is not None:
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def known_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys the model accepts at LOC (the location of a mapping, list indexes included;
    a step that is no key of the model is a key of a mapping of sections, as a queue's name in
    `queues: {NAME: {...}}`, and is passed over)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return []
        if isinstance(part, int):
            continue
        fields = current.model_fields
        field = fields.get(str(part)) or next(
            (field for field in fields.values() if field.alias == part), None
        )
        if field is not None:
            current = _model_in(field.annotation)
    if current is None:
        return []
    return [field.alias or name for name, field in current.model_fields.items()]


def _given(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    return repr(value)


def _plain(value: Any) -> Any:
    """100 rather than 100.0: bounds are said as the user would write them."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


_EXPECTED = {
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
}
_BOUNDS = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "more than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
    "too_short": "at least {min_length} item(s)",
    "literal_error": "one of {expected}",
}


def message(error: Any, model: type[BaseModel]) -> tuple[Loc, str]:
    """(location, words) for one of pydantic's error dicts."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return loc, unknown_key_message(str(loc[-1]), known_keys(model, loc[:-1]))
    if kind == "missing":
        return loc, "required key is missing"
    if kind in _EXPECTED:
        return loc, f"{_EXPECTED[kind]}, got {_given(error['input'])}"
    if kind in _BOUNDS:
        bound = _BOUNDS[kind].format(**{k: _plain(v) for k, v in error.get("ctx", {}).items()})
        return loc, f"expected {bound}, got {_given(error['input'])}"
    text = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return loc, text


def problems_of(exc: ValidationError, model: type[BaseModel]) -> list[tuple[Loc, str]]:
    """Every problem of one validation, in the order pydantic found them."""
    return [message(error, model) for error in exc.errors(include_url=False)]
