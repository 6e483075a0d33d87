"""The `certs` section of a host's vars: what certs.check looks at and when it warns.

`certs` is either a plain list of targets or a mapping with host-wide settings and a
`targets` list. Both are read into one `CertsSettings`; a problem in the list form is still
reported at the path as written (`certs[0].endpoint`, not `certs.targets[0].endpoint`).

Thresholds resolve as: built-in defaults < the `certs` mapping < the target's own <
command-line flags (`with_flags`: an operator's flag is a request for this run, so it wins
everywhere).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .flags import overridden
from .problems import moved
from .types import Number, Section, Text, Timeout

Days = Annotated[Number, Field(ge=0)]
STARTTLS = ("none", "postgres", "smtp")
DEFAULT_WARN_DAYS = 30.0
DEFAULT_CRIT_DAYS = 7.0


def split_endpoint(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' into its parts. Raise ValueError."""
    address, _, port = text.rpartition(":")
    address = address.strip("[]")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return address, int(port)


class CertTarget(Section):
    """One entry of `certs` (as a list) or of `certs.targets`: a TLS `endpoint` reached from
    the control machine or a PEM `file` on the host; exactly one of the two."""

    endpoint: str | None = Field(
        None,
        description="host:port of a TLS server, contacted from the machine running maint",
        examples=["db1.example.com:5432", "[::1]:443"],
    )
    file: str | None = Field(
        None,
        description="absolute path of a PEM (or DER) certificate file on the host",
        examples=["/etc/ssl/certs/app-fullchain.pem"],
    )
    server_name: Text | None = Field(
        None, description="endpoints: SNI and the name to match (default: the host part)"
    )
    starttls: Literal["none", "postgres", "smtp"] | None = Field(
        None, description="endpoints: STARTTLS exchange before the handshake (default none)"
    )
    ca_file: Text | None = Field(
        None,
        description="CA certificates to verify against (default: the system trust store); "
        "for an endpoint a file on the control machine, for a file target one on the host",
    )
    warn_days: Days | None = Field(None, description="this target's warn_days")
    crit_days: Days | None = Field(None, description="this target's crit_days")

    @field_validator("endpoint")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_endpoint(value)
        return value

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"expected an absolute path, got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.endpoint is None) == (self.file is None):
            raise ValueError("expected either 'endpoint' or 'file' (exactly one)")
        if self.file is not None:
            for key in ("server_name", "starttls"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key!r} applies to endpoints only, not to a file")
        return self

    @property
    def address(self) -> str:
        return split_endpoint(self.endpoint or "")[0]

    @property
    def port(self) -> int:
        return split_endpoint(self.endpoint or "")[1]


class CertsSettings(Section):
    """certs.check's settings of one host: thresholds, the automatic PostgreSQL check and
    the targets."""

    warn_days: Days = Field(
        DEFAULT_WARN_DAYS, description="WARNING when a certificate has this many days left or fewer"
    )
    crit_days: Days = Field(
        DEFAULT_CRIT_DAYS,
        description="CRITICAL when a certificate has this many days left or fewer",
    )
    postgres: bool = Field(
        True, description="check the certificate of the host's postgres.dsn server (STARTTLS)"
    )
    timeout: Timeout = Field(
        10.0, gt=0, description="seconds to connect and fetch an endpoint's certificates"
    )
    targets: list[CertTarget] = Field(
        default_factory=list, description="endpoints and files to check"
    )

    @model_validator(mode="after")
    def _crit_within_warn(self) -> Self:
        """crit_days at most warn_days, host-wide and per target as resolved."""
        if self.crit_days > self.warn_days:
            raise ValueError(_above(self.crit_days, self.warn_days))
        problems: list[InitErrorDetails] = []
        for index, target in enumerate(self.targets):
            warn, crit = self.thresholds(target)
            if crit > warn:
                words = PydanticCustomError("relation", "{words}", {"words": _above(crit, warn)})
                problems.append({"type": words, "loc": ("targets", index), "input": target})
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _list_form(cls, data: Any, handler: Any) -> Any:
        """`certs: [...]` is `certs: {targets: [...]}`; problems keep the path as written."""
        if isinstance(data, cls | dict):
            return handler(data)
        if not isinstance(data, list):
            raise ValueError(
                f"expected a list of targets or a mapping with settings and targets, got {data!r}"
            )
        try:
            return handler({"targets": data})
        except ValidationError as exc:
            raise ValidationError.from_exception_data(
                exc.title, [_relocated(error) for error in exc.errors()]
            ) from None

    def thresholds(self, target: CertTarget | None = None) -> tuple[float, float]:
        """(warn_days, crit_days) for TARGET: its own values, else the host's."""
        if target is None:
            return self.warn_days, self.crit_days
        warn = self.warn_days if target.warn_days is None else target.warn_days
        crit = self.crit_days if target.crit_days is None else target.crit_days
        return warn, crit

    def with_flags(self, warn_days: object = None, crit_days: object = None) -> Self:
        """These settings with the command line's thresholds in place of every var (the
        targets' own too), validated as the inventory is. Raise ValidationError."""
        flags = {"warn_days": warn_days, "crit_days": crit_days}
        given = {key: value for key, value in flags.items() if value is not None}
        if not given:
            return self
        cleared = {key: None for key in given}
        targets = [target.model_copy(update=cleared) for target in self.targets]
        return overridden(self.model_copy(update={"targets": targets}), given)


def list_form_schema(schema: dict[str, Any]) -> None:
    """JSON Schema of the `certs` key: the mapping, or a plain list of targets, or null."""
    mapping = next(part for part in schema["anyOf"] if "$ref" in part)
    target = mapping["$ref"].replace(CertsSettings.__name__, CertTarget.__name__)
    schema["anyOf"].insert(1, {"type": "array", "items": {"$ref": target}})


def _relocated(error: Any) -> InitErrorDetails:
    """One of pydantic's errors with the `targets` step dropped from its location (an unknown
    key's known keys are then the target's, said here while the path still shows it)."""
    loc = tuple(error["loc"])
    if loc[:1] == ("targets",):
        return moved(error, loc[1:], list(CertTarget.model_fields))
    return moved(error, loc)


def _above(crit: float, warn: float) -> str:
    return f"crit_days ({crit:g}) is above warn_days ({warn:g})"
