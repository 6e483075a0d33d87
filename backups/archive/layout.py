"""Object keys of backups: `<host>/<database>/<YYYYmmddTHHMMSSZ>.dump[.<codec>]` plus
`<same>.manifest.json`, `<host>/_globals/<stamp>.sql[.<codec>]` for roles and tablespaces,
and `<host>/<source>/<stamp>.<extension>[.<codec>]` for a backup.sources entry (the extension
says the kind's format: `sqlite`, a command's `suffix` such as `archive.gz`).

With codec none, a dotted extension's last word reads as the key's codec (`archive.gz`): the
key's codec is only shown, never trusted; restores decompress by the manifest's.

Host and database names are percent-encoded so a '/' or a space in a name cannot change the
key's shape; a name '.' or '..' (legal for PostgreSQL and in inventories) has its dots
encoded too, since such a key segment would mean "here" or "up" to a store. Keys that do not
parse are someone else's and are left alone by every caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MANIFEST_SUFFIX = ".manifest.json"
VERIFY_SUFFIX = ".verify.json"
GLOBALS = "_globals"
# `<database>~partial` (backup.db --table), `<database>~safety` (restore.db --force): backups
# of a database kept under a name of their own, never taken for the database's backups.
LABEL_MARK = "~"
_DATA = re.compile(
    r"^(?P<host>[^/]+)/(?P<database>[^/]+)/(?P<stamp>\d{8}T\d{6}Z)"
    r"\.(?P<kind>dump|sql|[a-z0-9]+(?:\.[a-z0-9]+)*?)(?:\.(?P<codec>[a-z0-9]+))?$"
)


@dataclass(frozen=True)
class BackupKey:
    """The parts of a data object's key."""

    host: str
    database: str
    time: datetime
    # "dump" (pg_dump custom format), "sql" (pg_dumpall --globals-only under _globals), or a
    # source's extension ("sqlite", a command's suffix ...).
    kind: str
    codec: str | None

    @property
    def key(self) -> str:
        name = f"{self.time.strftime(STAMP_FORMAT)}.{self.kind}"
        if self.codec:
            name += f".{self.codec}"
        return f"{encode_name(self.host)}/{encode_name(self.database)}/{name}"

    @property
    def manifest_key(self) -> str:
        return self.key + MANIFEST_SUFFIX

    @property
    def verify_key(self) -> str:
        return self.key + VERIFY_SUFFIX

    @property
    def is_globals(self) -> bool:
        return self.kind == "sql" and self.database == GLOBALS


def is_labelled(name: str) -> bool:
    """Whether NAME is a labelled series of a database's backups (`app~partial`)."""
    return LABEL_MARK in name


def encode_name(name: str) -> str:
    """NAME as one key segment: percent-encoded, and never '.' or '..' (unquote decodes both)."""
    encoded = quote(name, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def database_key(host: str, database: str, started: datetime, codec: str | None) -> BackupKey:
    return BackupKey(host, database, started.astimezone(UTC).replace(microsecond=0), "dump", codec)


def source_key(
    host: str, name: str, started: datetime, extension: str, codec: str | None
) -> BackupKey:
    """The key of a backup of source NAME, its object named with the kind's EXTENSION."""
    return BackupKey(host, name, started.astimezone(UTC).replace(microsecond=0), extension, codec)


def globals_key(host: str, started: datetime, codec: str | None) -> BackupKey:
    return BackupKey(host, GLOBALS, started.astimezone(UTC).replace(microsecond=0), "sql", codec)


def parse_key(key: str) -> BackupKey | None:
    """The parts of a data object's KEY, or None for anything else (manifests included)."""
    match = _DATA.match(key)
    if not match or key.endswith((MANIFEST_SUFFIX, VERIFY_SUFFIX)):  # a source's own files
        return None
    try:
        stamp = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return BackupKey(
        unquote(match["host"]), unquote(match["database"]), stamp, match["kind"], match["codec"]
    )


def host_prefix(host: str, database: str | None = None) -> str:
    """The listing prefix of a host's (or one database's) backups."""
    prefix = encode_name(host) + "/"
    return prefix + encode_name(database) + "/" if database is not None else prefix
