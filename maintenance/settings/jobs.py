"""The `jobs` key: named jobs `maint job.run --name NAME` runs, each an SQL statement or a command.

An SQL job runs one statement in a transaction bounded by statement_timeout and lock_timeout,
and is rolled back when it would change more than max_rows rows. Its values are bound
parameters (`%(name)s` in the statement), never formatted into the text: the placeholders and
the parameters must match here, at load, rather than fail at the first run.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, model_validator

from .postgres import ServerTimeout
from .types import Positive, Section, Text, Timeout

NAME_PATTERN = r"[a-z0-9][a-z0-9_.-]*"
MAX_NAME_LENGTH = 64
DEFAULT_MAX_ROWS = 1000
MAX_MAX_ROWS = 1_000_000_000  # a guard of a billion rows guards nothing
# The keys that belong to one kind of job only, and the kind they belong to.
SQL_ONLY = ("database", "parameters", "max_rows", "statement_timeout", "lock_timeout")
COMMAND_ONLY = ("timeout",)
# psycopg's placeholders: %(name)s (or b, t), %% for a literal %; anything else is refused.
_PERCENT = re.compile(r"%(?:%|\((?P<name>[^)]*)\)[sbt]|(?P<bad>.?))", re.DOTALL)
_SCALARS = (str, int, float, date, datetime, type(None))


def _job_name(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH or not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            f"expected a job name of lower-case letters, digits and _ . - (starting with a "
            f"letter or digit, at most {MAX_NAME_LENGTH} characters), got {value!r}"
        )
    return value


def _parameter(value: Any) -> Any:
    """A value psycopg binds: text, a number, a date or time, null, or a list of those."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool):
            continue
        if not isinstance(item, _SCALARS):
            raise ValueError(
                "expected text, a number, true/false, a date, null or a list of those, "
                f"got {'a mapping' if isinstance(item, dict) else repr(item)}"
            )
    return value


JobName = Annotated[
    str,
    AfterValidator(_job_name),
    WithJsonSchema(
        {"type": "string", "pattern": f"^{NAME_PATTERN}$", "maxLength": MAX_NAME_LENGTH,
         "x-type": "job name"}
    ),
]  # fmt: skip
Parameter = Annotated[
    Any,
    BeforeValidator(_parameter),
    WithJsonSchema(
        {"anyOf": [{"type": ["string", "number", "boolean", "null"]}, {"type": "array"}],
         "x-type": "value bound to %(name)s"}
    ),
]  # fmt: skip


def placeholders(statement: str) -> tuple[set[str], bool]:
    """The %(name)s placeholders of STATEMENT, and whether it has a lone % psycopg refuses."""
    names: set[str] = set()
    lone = False
    for match in _PERCENT.finditer(statement):
        if match.group("name") is not None:
            names.add(match.group("name"))
        elif match.group("bad") is not None:
            lone = True
    return names, lone


class Job(Section):
    """One named job: `sql` (a statement on the host's PostgreSQL) or `command` (on the host)."""

    name: JobName = Field(
        description="the job's name, as `maint job.run --name` and schedule args give it; "
        "unique per host",
        examples=["fail-stuck-jobs"],
    )
    sql: Text | None = Field(
        None,
        description="one SQL statement, run in a transaction; values as %(name)s placeholders "
        "bound from parameters (a literal % is written %%)",
        examples=[
            "UPDATE jobs SET status = 'failed' WHERE status = 'processing' "
            "AND started_at < now() - interval '30 minutes'"
        ],
    )
    database: Text | None = Field(
        None, description="database of the statement (default: the one in postgres.dsn)"
    )
    parameters: dict[str, Parameter] = Field(
        default_factory=dict,
        description="values bound to the statement's %(name)s placeholders, by name",
        examples=[{"status": "processing", "older_than": "30 minutes"}],
    )
    max_rows: Positive = Field(
        DEFAULT_MAX_ROWS,
        le=MAX_MAX_ROWS,
        description="roll back and fail when the statement would change (or return) more rows "
        "than this",
        examples=[100],
    )
    statement_timeout: ServerTimeout = Field(
        "5min",
        validate_default=True,
        description="cancel the statement (and roll back) past this long; 0 = no limit",
    )
    lock_timeout: ServerTimeout = Field(
        "10s",
        validate_default=True,
        description="give up (and roll back) when a lock is not granted within this; "
        "0 = wait for ever",
    )
    command: Text | None = Field(
        None,
        description="a shell command run on the host through its connection; a non-zero exit "
        "fails the host",
        examples=["rabbitmqadmin purge queue name=birthday_messages_dlq"],
    )
    timeout: Timeout = Field(
        "10min",
        validate_default=True,
        description="stop the command past this long; 0: only the host's command_timeout",
        examples=["30min"],
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.sql is None) == (self.command is None):
            if self.sql is not None:
                raise ValueError("a job has sql or command, not both: make them two jobs")
            raise ValueError("a job needs sql (a statement) or command (run on the host)")
        misplaced, kind = (COMMAND_ONLY, "a command") if self.sql else (SQL_ONLY, "an sql")
        for key in misplaced:
            if key in self.model_fields_set:
                raise ValueError(f"{key} is only for {kind} job")
        if self.sql is not None:
            self._check_parameters(self.sql)
        return self

    def _check_parameters(self, statement: str) -> None:
        """Refuse placeholders without a value, values no placeholder takes, and a lone %."""
        names, lone = placeholders(statement)
        missing = sorted(names - set(self.parameters))
        if missing:
            raise ValueError(f"sql: %({missing[0]})s has no value in parameters")
        unused = sorted(set(self.parameters) - names)
        if unused:
            raise ValueError(f"parameters.{unused[0]}: the sql has no %({unused[0]})s")
        if lone:
            raise ValueError(
                "sql: a literal % is written %% (the statement's %(name)s placeholders are "
                "read by psycopg)"
            )

    @property
    def kind(self) -> str:
        return "sql" if self.sql is not None else "command"


def _unique_names(jobs: list[Job]) -> list[Job]:
    seen: dict[str, int] = {}
    for index, job in enumerate(jobs):
        if job.name in seen:
            raise ValueError(
                f"name {job.name!r} is given twice (jobs[{seen[job.name]}] and jobs[{index}])"
            )
        seen[job.name] = index
    return jobs


Jobs = Annotated[list[Job], AfterValidator(_unique_names)]
