"""The `report` section: what `maint report` judges each database (or source) against.

A recovery point objective (`rpo`) and a drill age limit have defaults, so every row gets a
colour; a recovery time objective (`rto`) has none, because a restore time nobody promised
cannot be missed. Zero is refused for each: it would paint every row red (or amber) for ever.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from .types import Duration, Section


class ReportSettings(Section):
    """Objectives of `maint report`; every key has a default, so `report` may be left out."""

    rpo: Duration = Field(
        "26h",
        validate_default=True,
        description="red when a database's newest complete backup is older than this "
        "(recovery point objective)",
        examples=["26h", "2d"],
    )
    drill_max_age: Duration = Field(
        "8d",
        validate_default=True,
        description="amber when a database's newest passing restore drill is older than this",
        examples=["8d"],
    )
    rto: Duration | None = Field(
        None,
        description="amber when the newest drill's restore took longer than this (recovery "
        "time objective); unset: restore times are shown, not judged",
        examples=["30min"],
    )

    @field_validator("rpo", "drill_max_age", "rto")
    @classmethod
    def _longer_than_zero(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value
