"""`backup.sources`: what backup.db backs up beside the host's PostgreSQL databases.

The kind of a source is the key that names its target (`sqlite: PATH`, `command: CMD`,
`redis: URL`, `mysql: URL`); a source has exactly one, as a health probe does. Every kind is
its own section, so a typo gets a did-you-mean from that kind's keys, and a problem is said at
the path as written (`backup.sources[1].sufix`).

A source's `name` is the second segment of its objects' keys (`<host>/<name>/<stamp>...`), so
it is unique on a host, never one of its PostgreSQL databases, and safe as a key segment.
Passwords are named by the environment variable holding them (`password_env`); a redis or
mysql URL may carry one too (the issue's contract accepts it), masked wherever it is shown.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, Tag, ValidationInfo, field_validator

from .kinds import Kinded, KindedList
from .types import EnvName, Text, url_of

# A key segment on every store and a file name on every host: letters, digits, '.', '_', '-',
# starting with a letter or digit ('_globals' and '.'/'..' stay out of reach), at most 100.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE = (
    "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit (it names the "
    "source's objects in the store)"
)
# A command's object suffix: lowercase dotted words, as file extensions are written.
_SUFFIX = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+){0,3}")


def _source_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"expected {NAME_RULE}, got {value!r}")
    return value


SourceName = Annotated[str, AfterValidator(_source_name)]


class SourceBase(Kinded):
    """Keys every source has."""

    name: SourceName = Field(
        description="names the source's backups (`<host>/<name>/...`), --source and checks; "
        "unique on a host and not one of its postgres.databases",
        examples=["app-local"],
    )


class SqliteSource(SourceBase):
    """`sqlite: PATH`: a consistent copy by SQLite's online backup API while the application
    writes, made on the host with its python3; row counts per table in the manifest."""

    kind: ClassVar[str] = "sqlite"

    sqlite: Text = Field(
        description="the database file's absolute path on the host",
        examples=["/var/lib/app/app.db"],
    )

    @field_validator("sqlite")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"expected an absolute path on the host, got {path!r}")
        return path


class CommandSource(SourceBase):
    """`command: CMD`: any command whose stdout is the dump, run on the host by its shell.

    A non-zero exit fails the backup (no complete backup is left) and its stderr is
    reported. Secrets reach the command through the host's environment, never the inventory;
    the host's `command_timeout` bounds it like any command.
    """

    kind: ClassVar[str] = "command"

    command: Text = Field(
        description="a shell command line writing the dump to stdout",
        examples=['mongodump --archive --gzip --uri="$EVENTS_URI"'],
    )
    restore_command: Text | None = Field(
        None,
        description="a shell command line reading a dump on stdin and restoring it into "
        "`$MAINT_TARGET` (in a drill: a throwaway name, `$MAINT_TMP_DIR` a private directory)",
        examples=["mongorestore --archive --gzip --nsFrom='events.*' --nsTo=\"$MAINT_TARGET.*\""],
    )
    check_command: Text | None = Field(
        None,
        description="a shell command line run after a drill's restore, `$MAINT_TARGET` set: "
        "exit 0 passes, anything else fails the drill (its stderr's tail is recorded)",
    )
    cleanup_command: Text | None = Field(
        None,
        description="a shell command line removing a drill's throwaway target (`$MAINT_TARGET`), "
        "run after the check whatever its outcome",
    )
    suffix: Annotated[str, Field(pattern=f"^{_SUFFIX.pattern}$")] = Field(
        "out",
        description="the object name's extension before the codec's (lowercase dotted words)",
        examples=["archive.gz", "tar"],
    )


class RedisSource(SourceBase):
    """`redis: URL`: an RDB snapshot streamed from the server, keys per logical database."""

    kind: ClassVar[str] = "redis"

    redis: Annotated[str, url_of("redis", "rediss")] = Field(
        description="the server's URL: `redis://` or `rediss://`, host and port (default 6379); "
        "an ACL user may precede the host, and a password (masked wherever it is shown; "
        "`password_env` keeps it out of the inventory and wins over it)",
        examples=["redis://127.0.0.1:6379"],
    )
    password_env: EnvName | None = Field(
        None, description="the environment variable holding the password"
    )


class MysqlSource(SourceBase):
    """`mysql: URL`: mariadb-dump/mysqldump --single-transaction per database, with row
    counts taken in the same snapshot; objects `<name>.<database>`."""

    kind: ClassVar[str] = "mysql"

    mysql: Annotated[str, url_of("mysql", "mariadb")] = Field(
        description="the server's URL: `mysql://user@host:port` (default port 3306); a password "
        "after the user is accepted (masked wherever it is shown; `password_env` keeps it out "
        "of the inventory and wins over it)",
        examples=["mysql://backup@127.0.0.1:3306"],
    )
    password_env: EnvName | None = Field(
        None, description="the environment variable holding the password"
    )
    databases: list[Text] = Field(
        min_length=1,
        description="the databases to dump, each its own backup `<name>.<database>` (so "
        "letters, digits, '.', '_' or '-', each once, at most 100 characters with the name)",
        examples=[["shop"]],
    )

    @field_validator("databases")
    @classmethod
    def _units(cls, databases: list[str], info: ValidationInfo) -> list[str]:
        """Each database names a backup, `<name>.<database>`: a key segment like a name."""
        name = info.data.get("name", "")
        for database in databases:
            if not _NAME.fullmatch(f"{name}.{database}") or "/" in database:
                raise ValueError(
                    f"{database!r} cannot name a backup ({name}.{database}): expected "
                    "letters, digits, '.', '_' or '-', at most 100 characters with the name"
                )
        twice = sorted({database for database in databases if databases.count(database) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(twice)}")
        return databases


SOURCES = KindedList(
    "source",
    (SqliteSource, CommandSource, RedisSource, MysqlSource),
    action="backed up",
    name_is="its backups' name",
    suggest=True,
)

Source = Annotated[
    Annotated[SqliteSource, Tag("sqlite")]
    | Annotated[CommandSource, Tag("command")]
    | Annotated[RedisSource, Tag("redis")]
    | Annotated[MysqlSource, Tag("mysql")],
    SOURCES.discriminator(),
]


def checked_sources(value: Any, handler: Any) -> list[SourceBase]:
    """`backup.sources` validated, each problem said at the path as written, names unique.

    For a field validator in wrap mode: HANDLER validates the list.
    """
    return SOURCES.checked(value, handler)
