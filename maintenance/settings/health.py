"""The `health` section of a host's vars: what health.check looks at and where it turns red.

Every threshold pair is checked for direction: a crit threshold that is looser than its warn
threshold would make the check skip WARNING (or never reach CRITICAL) without a word.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from .probes import Probe, ProbeBase, checked_probes
from .thresholds import misordered, refuse_misordered
from .types import Count, Duration, OneOrMany, Percent, Section

_QUERY_AGE = "a duration like 30s, 5min, 1h; a bare number is seconds (m is minutes)"


class HealthSettings(Section):
    """Thresholds of health.check; every key has a default, so `health` may be left out."""

    disk_paths: OneOrMany = Field(
        ["/"],
        min_length=1,
        description="filesystems whose free space is checked (one path or a list, at least one)",
        examples=[["/", "/var/lib/postgresql"]],
    )
    disk_warn_free_pct: Percent = Field(
        20, description="WARNING when a filesystem has this % free or less"
    )
    disk_crit_free_pct: Percent = Field(
        10, description="CRITICAL when a filesystem has this % free or less"
    )
    connections_warn_pct: Percent = Field(
        80, description="WARNING when this % of max_connections or more is in use"
    )
    connections_crit_pct: Percent = Field(
        90, description="CRITICAL when this % of max_connections or more is in use"
    )
    long_query_seconds: Duration = Field(
        300,
        validate_default=True,
        description=f"a query active longer than this counts as long: {_QUERY_AGE}",
        examples=["10min"],
    )
    long_query_warn: Count = Field(1, description="WARNING at this many long queries or more")
    long_query_crit: Count = Field(5, description="CRITICAL at this many long queries or more")
    idle_in_transaction_seconds: Duration = Field(
        600,
        validate_default=True,
        description=f"a session idle in a transaction longer than this counts: {_QUERY_AGE}",
        examples=["15min"],
    )
    idle_in_transaction_warn: Count = Field(
        1, description="WARNING at this many sessions idle in transaction or more"
    )
    idle_in_transaction_crit: Count = Field(
        5, description="CRITICAL at this many sessions idle in transaction or more"
    )
    backup_warn_age: Duration = Field(
        "26h",
        validate_default=True,
        description="WARNING when a database's newest complete backup is this old",
    )
    backup_crit_age: Duration = Field(
        "50h",
        validate_default=True,
        description="CRITICAL when a database's newest complete backup is this old",
    )
    drill_warn_age: Duration = Field(
        "8d",
        validate_default=True,
        description="WARNING when a database's newest passing restore drill is this old",
    )
    drill_crit_age: Duration = Field(
        "15d",
        validate_default=True,
        description="CRITICAL when a database's newest passing restore drill is this old",
    )

    probes: list[Probe] = Field(
        default_factory=list,
        description="checks of the services around PostgreSQL, each named and of one kind: "
        "http, tcp, rabbitmq, redis, sql or command (see docs/checks.md)",
        examples=[[{"name": "api", "http": "http://127.0.0.1:8001/health"}]],
    )

    @field_validator("probes", mode="wrap")
    @classmethod
    def _probes_as_written(cls, value: Any, handler: Any) -> list[ProbeBase]:
        return checked_probes(value, handler)

    @model_validator(mode="after")
    def _crit_beyond_warn(self) -> Self:
        """Each crit threshold at or beyond its warn threshold, in the direction that is worse."""
        refuse_misordered(
            misordered(self, "disk_warn_free_pct", "disk_crit_free_pct", "lower"),
            misordered(self, "connections_warn_pct", "connections_crit_pct", "higher"),
            misordered(self, "long_query_warn", "long_query_crit", "higher"),
            misordered(self, "idle_in_transaction_warn", "idle_in_transaction_crit", "higher"),
            misordered(self, "backup_warn_age", "backup_crit_age", "higher"),
            misordered(self, "drill_warn_age", "drill_crit_age", "higher"),
        )
        return self
