"""Scratch databases for restore drills: created with a mark, dropped only if they carry it.

The product only ever drops databases it created; the mark is a COMMENT checked right before
DROP, so a name clash with a real database can never cost data.
"""

from __future__ import annotations

import re
from datetime import datetime

from psycopg import sql

from maintenance import pg
from maintenance.errors import MaintError

MARK = "maint restore.verify scratch database"
_UNSAFE = re.compile(r"[^a-z0-9_]+")


class ScratchError(MaintError):
    """A scratch database could not be created, or is not ours to drop."""


def scratch_name(database: str, when: datetime) -> str:
    """`maint_verify_<db>_<timestamp>`, within PostgreSQL's 63-byte identifier limit."""
    stem = _UNSAFE.sub("_", database.lower()).strip("_")[:30] or "db"
    return f"maint_verify_{stem}_{when:%Y%m%d%H%M%S}"


def create_scratch(server: pg.Postgres, name: str) -> None:
    with server.connect() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        connection.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(MARK))
        )


def drop_scratch(server: pg.Postgres, name: str) -> None:
    """Drop NAME if it carries the mark. Raise ScratchError if it exists without it."""
    with server.connect() as connection:
        row = connection.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (name,),
        ).fetchone()
        if row is None:
            return
        if row[0] != MARK:
            raise ScratchError(f"refusing to drop database {name!r}: it was not created by a drill")
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
