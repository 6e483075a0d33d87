"""Lists of sections whose kind is the key naming their target (`http: URL`, `sqlite: PATH`).

`health.probes` and `backup.sources` are written the same way: each entry has exactly one of
its kinds' keys, and every kind is its own section, so a typo gets a did-you-mean from that
kind's keys. Pydantic's discriminated union would say a problem at `[0].http.timeout` and a
missing kind as "no kind"; `KindedList` says it at the path as written (`[0].timeout`) and the
missing or doubled kind in words, and keeps the entries' names unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import ConfigDict, Discriminator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from .problems import Loc, closest, known_keys, moved
from .types import Section


def _kind_in_schema(schema: dict[str, Any], model: type) -> None:
    """`x-kind`: docs/settings.md titles each kind's table with it."""
    kind = getattr(model, "kind", None)
    if kind:
        schema["x-kind"] = kind


class Kinded(Section):
    """A section whose kind is the key naming its target; every entry has a `name`."""

    model_config = ConfigDict(**Section.model_config, json_schema_extra=_kind_in_schema)

    kind: ClassVar[str]
    name: str


class KindedList:
    """How a list of NOUNs (`probe`, `source`) is validated and its problems said.

    ACTION says what the kind's key names (`naming what is {action}`), NAME_IS what an entry's
    name is (`a probe's name is {name_is}, unique on a host`). With SUGGEST an unknown key
    close to a kind gets a did-you-mean. VALUE_UNIONS are keys whose mapping's values are a
    union of their own (a probe's `headers`): that step is left out of a location too.
    """

    def __init__(
        self,
        noun: str,
        models: Sequence[type[Kinded]],
        *,
        action: str,
        name_is: str,
        suggest: bool = False,
        value_unions: tuple[str, ...] = (),
    ) -> None:
        self.noun = noun
        self.models = {model.kind: model for model in models}
        self.kinds = tuple(self.models)
        self.said = ", ".join(f"'{kind}'" for kind in self.kinds[:-1]) + f" or '{self.kinds[-1]}'"
        self.action = action
        self.name_is = name_is
        self.suggest = suggest
        self.value_unions = value_unions
        self.error_type = f"{noun}_kind"

    def kind_of(self, value: Any) -> str | None:
        """The kind an entry as written names, or None when it names none or several."""
        if isinstance(value, Kinded) and type(value) in self.models.values():
            return value.kind
        if isinstance(value, dict):
            named = [kind for kind in self.kinds if kind in value]
            return named[0] if len(named) == 1 else None
        return None

    def discriminator(self) -> Discriminator:
        """The union's discriminator: its error is reworded by `checked`."""
        return Discriminator(
            self.kind_of, custom_error_type=self.error_type, custom_error_message="no kind"
        )

    def checked(self, value: Any, handler: Any) -> list[Any]:
        """The list validated, each problem said at the path as written, names unique.

        For a field validator in wrap mode: HANDLER validates the list.
        """
        try:
            entries: list[Kinded] = handler(value)
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                exc.title, [self._as_written(error) for error in exc.errors()]
            ) from None
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            if entry.name in seen:
                raise ValueError(
                    f"{self.noun}s [{seen[entry.name]}] and [{index}] are both named "
                    f"{entry.name!r}: a {self.noun}'s name is {self.name_is}, unique on a host"
                )
            seen[entry.name] = index
        return entries

    def _as_written(self, error: Any) -> InitErrorDetails:
        """ERROR without the union's kind step in its location (`[0].http.timeout` is written
        `[0].timeout`), an unknown key said with that kind's keys, a missing kind in words."""
        loc: Loc = tuple(error["loc"])
        if error["type"] == self.error_type:
            words = PydanticCustomError(
                self.error_type, "{words}", {"words": self._kind_words(error["input"])}
            )
            return {"type": words, "loc": loc, "input": error["input"]}
        if len(loc) >= 2 and loc[1] in self.models:
            index, kind, *rest = loc
            if rest[:1] and rest[0] in self.value_unions and len(rest) >= 3:
                del rest[2]  # the value's own union step
            return moved(
                error, (index, *rest), known_keys(self.models[str(kind)], tuple(rest[:-1]))
            )
        return moved(error, loc)

    def _kind_words(self, value: Any) -> str:
        if not isinstance(value, dict):
            return f"expected a mapping naming its target with one of {self.said}, got {value!r}"
        named = [kind for kind in self.kinds if kind in value]
        if not named:
            keys = ", ".join(map(repr, value)) or "no keys"
            return (
                f"no {self.noun} kind: expected one of the keys {self.said}, naming what is "
                f"{self.action} (got {keys}){self._guess(value)}"
            )
        return (
            f"two {self.noun} kinds in one {self.noun} ({' and '.join(map(repr, named))}): "
            f"a {self.noun} has exactly one of {self.said}"
        )

    def _guess(self, value: dict[Any, Any]) -> str:
        if not self.suggest:
            return ""
        unknown = [key for key in value if key not in self.kinds]
        guesses = [closest(str(key), self.kinds, within=1) for key in unknown]
        return next((f"; did you mean {g!r}?" for g in guesses if g), "")
