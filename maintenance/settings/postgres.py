"""The `postgres` section of a host's vars: how to reach its server and how to maintain it.

Defaults are written as a user would write them ("5s", "10MB") and parsed like any value
(validate_default), so the generated docs and JSON Schema show the words the inventory uses.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from .durations import duration_words
from .types import (
    MAX_MILLISECONDS,
    Count,
    DeletionAge,
    Duration,
    Positive,
    Ratio,
    Section,
    Size,
    Text,
    Timeout,
)

DEFAULT_PORT = 5432


def _database_list(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(
            f"expected a list of database names, got the string {value!r}; write [{value}]"
        )
    return value


def _dsn(value: str) -> str:
    params = dsn_params(value)  # parsed here, so a bad DSN is said before any run
    for port in str(params.get("port") or "").split(","):  # one per server of a multi-host DSN
        port = port.strip()
        if port and not (re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535):
            raise ValueError("the port must be a number from 1 to 65535")
    return value


def _server_milliseconds(value: timedelta) -> timedelta:
    """A timeout PostgreSQL takes as int4 milliseconds: at most 2147483647 ms."""
    if round(value.total_seconds() * 1000) > MAX_MILLISECONDS:
        raise ValueError(
            f"too long for PostgreSQL: at most {duration_words(MAX_MILLISECONDS // 1000)} "
            f"({MAX_MILLISECONDS} ms; 0 means no limit), got {duration_words(value)}"
        )
    return value


DatabaseNames = Annotated[list[Text], BeforeValidator(_database_list)]
Dsn = Annotated[Text, AfterValidator(_dsn)]
ServerTimeout = Annotated[Duration, AfterValidator(_server_milliseconds)]


class PurgeRule(Section):
    """Delete rows of one table whose date column is older than an age, in batches."""

    table: Text = Field(description="table to purge", examples=["events"])
    column: Text = Field(
        description="date or timestamp column that says how old a row is",
        examples=["created_at"],
    )
    older_than: DeletionAge = Field(
        description="rows older than this go; months and years count on the calendar. "
        "A bare number or a bare m is refused as ambiguous",
        examples=["90d", "12mo", "1y"],
    )
    schema_name: Text = Field(
        "public", alias="schema", description="schema of the table", examples=["audit"]
    )
    database: Text | None = Field(
        None, description="database of the table (default: the one in postgres.dsn)"
    )
    batch: Positive | None = Field(
        None,
        description="rows per DELETE for this table (default: postgres.maintenance.purge_batch)",
        examples=[5000],
    )


class MaintenanceSettings(Section):
    """Thresholds and timeouts of the db tasks; each flag of a db task overrides its key."""

    lock_timeout: ServerTimeout = Field(
        "5s",
        validate_default=True,
        description="skip an object whose lock is not granted within this (0 = wait for ever)",
        examples=["5s", "1min"],
    )
    statement_timeout: ServerTimeout = Field(
        "1h",
        validate_default=True,
        description="cancel a statement running longer than this (0 = no limit)",
    )
    vacuum_dead_ratio: Ratio = Field(
        0.1,
        description="vacuum a table whose dead tuples are at least this share (0-1) of its rows",
    )
    vacuum_dead_tuples: Count = Field(
        100_000,
        description="vacuum a table with at least this many dead tuples whatever the ratio",
    )
    vacuum_min_dead_tuples: Count = Field(
        1_000, description="never vacuum a table with fewer dead tuples than this"
    )
    analyze_modified_ratio: Ratio = Field(
        0.1,
        description="analyze a table whose rows changed since its last analyze are at least "
        "this share (0-1) of it",
    )
    analyze_min_modifications: Count = Field(
        1_000, description="never analyze a table with fewer changed rows than this"
    )
    reindex_bloat_ratio: Ratio = Field(
        0.3,
        description="rebuild an index whose estimated bloat is at least this share (0-1) of its "
        "size",
    )
    reindex_min_size: Size = Field(
        "10MB",
        validate_default=True,
        description="leave indexes smaller than this alone",
        examples=["10MB", "1GiB"],
    )
    purge_batch: Positive = Field(10_000, description="rows per DELETE of db.purge")
    purge_pause: Duration = Field(
        "0.5s",
        validate_default=True,
        description="pause between two batches of db.purge, so replicas keep up",
    )
    long_query_age: Duration = Field(
        "5min",
        validate_default=True,
        description="db.long_queries counts queries running longer than this",
    )
    idle_age: Duration = Field(
        "10min",
        validate_default=True,
        description="db.idle_connections counts sessions idle longer than this",
    )
    purge: list[PurgeRule] = Field(
        default_factory=list,
        description="tables db.purge empties of old rows when run without --table",
        examples=[[{"table": "events", "column": "created_at", "older_than": "90d"}]],
    )

    @model_validator(mode="after")
    def _agree(self) -> MaintenanceSettings:
        problems = self.contradictions()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def contradictions(self) -> list[str]:
        """Keys that defeat each other; also checked when flags override some of them."""
        problems = []
        if self.vacuum_min_dead_tuples > self.vacuum_dead_tuples:
            problems.append(
                "vacuum_min_dead_tuples must not exceed vacuum_dead_tuples "
                f"({self.vacuum_min_dead_tuples} > {self.vacuum_dead_tuples})"
            )
        lock, statement = self.lock_timeout, self.statement_timeout
        if lock and statement and lock > statement:
            problems.append(
                f"lock_timeout ({duration_words(lock)}) must not exceed statement_timeout "
                f"({duration_words(statement)}): "
                "a lock wait would be cancelled as a slow statement"
            )
        return problems


class PostgresSettings(Section):
    """The host's PostgreSQL server: where it is, how to reach it, what to maintain."""

    dsn: Dsn | None = Field(
        None,
        description="libpq connection string or URI of the server, as this machine reaches it "
        "(as the host itself reaches it with ssh_tunnel). The password is masked wherever "
        "the DSN is shown; prefer ~/.pgpass or PGPASSWORD",
        examples=["postgresql://maint@db1.example.com:5432/app", "host=/var/run/postgresql"],
    )
    databases: DatabaseNames | None = Field(
        None,
        description="databases the db and backup tasks work on (default, or an empty list: "
        "every connectable non-template database)",
        examples=[["app", "billing"]],
    )
    connect_timeout: Timeout = Field(
        10,
        description="seconds (or a duration) to wait for a connection; 0 = wait for ever",
        examples=[10, "30s"],
    )
    ssh_tunnel: bool = Field(
        False,
        description="reach the server through the host's SSH connection, for a server that "
        "listens only where the host sees it (e.g. its loopback); every task's connections "
        "from this machine go through the tunnel, client tools on the host connect directly",
    )
    bin_dir: Text | None = Field(
        None,
        description="directory of pg_dump, pg_dumpall, pg_restore and psql on the host "
        "(default: the newest matching /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, PATH)",
        examples=["/usr/lib/postgresql/15/bin"],
    )
    maintenance: MaintenanceSettings = Field(
        default_factory=dict,
        validate_default=True,
        description="thresholds and timeouts of the db tasks, and db.purge's rules",
    )

    @model_validator(mode="after")
    def _reachable(self) -> PostgresSettings:
        if self.ssh_tunnel and self.dsn is not None:
            tunnel_target(dsn_params(self.dsn))
        elif self.ssh_tunnel:
            raise ValueError("ssh_tunnel needs dsn: the address to reach through the tunnel")
        return self

    @property
    def connect_timeout_s(self) -> int:
        """libpq's connect_timeout: whole seconds, rounded up so 0.5 never becomes 0 (no limit)."""
        return math.ceil(self.connect_timeout)


def dsn_params(dsn: str) -> dict[str, Any]:
    """The DSN's libpq parameters. Raise ValueError, without the DSN's text (it may hold a
    password), if it does not parse. psycopg is imported here only: hosts without a DSN (and
    tasks that never read one) do not pay for it at start-up.
    """
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(dsn)
    except ProgrammingError:
        raise ValueError("not a valid libpq connection string or URI") from None


def tunnel_target(params: dict[str, Any]) -> tuple[str, int]:
    """Where the DSN's server is as the host itself sees it: (address, port).

    A socket directory means the host's own localhost. Raise ValueError for a DSN naming
    several servers: one tunnel leads to one.
    """
    address = str(params.get("hostaddr") or params.get("host") or "localhost")
    port = str(params.get("port") or DEFAULT_PORT)
    if "," in address or "," in port:
        raise ValueError("ssh_tunnel: a dsn naming several servers cannot go through one tunnel")
    if not port.isdigit():
        raise ValueError(f"dsn: port must be a number, got {port!r}")
    return ("localhost" if address.startswith("/") else address), int(port)
