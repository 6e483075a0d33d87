"""PostgreSQL connections from the control machine, named so DBAs can tell who is connected."""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .errors import ConfigError, MaintError
from .inventory import Host
from .secrets import mask_text

DEFAULT_CONNECT_TIMEOUT = 10


class DatabaseError(MaintError):
    """A PostgreSQL error, with any password in its text masked."""


def host_dsn(host: Host) -> str:
    """The host's `postgres.dsn`. Raise ConfigError if the host has none."""
    dsn = host.var("postgres.dsn")
    if not dsn:
        raise ConfigError(f"host {host.name!r}: key 'postgres.dsn' is not set")
    return str(dsn)


def connect(
    host: Host,
    task: str,
    *,
    dbname: str | None = None,
    autocommit: bool = True,
    **params: str | int,
) -> psycopg.Connection:
    """Open a connection to HOST's server as `maint <task>`. Raise DatabaseError if it fails.

    PARAMS override libpq parameters of the DSN, e.g. hostaddr and port of an SSH tunnel.
    """
    overrides: dict[str, object] = {
        "application_name": f"maint {task}",
        "connect_timeout": int(host.var("postgres.connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
        **params,
    }
    if dbname is not None:
        overrides["dbname"] = dbname
    try:
        return psycopg.connect(host_dsn(host), autocommit=autocommit, **overrides)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect to PostgreSQL: {mask_text(str(exc)).strip()}"
        ) from None


def client_connection(host: Host, task: str, dbname: str) -> tuple[str, dict[str, str]]:
    """Conninfo for a client tool run on the host, and the environment carrying its password.

    The password is removed from the conninfo, because a command line is visible to every user
    of the host; it travels as PGPASSWORD in the process's environment instead.
    """
    params = conninfo_to_dict(host_dsn(host))
    password = params.pop("password", None)
    params.update(dbname=dbname, application_name=f"maint {task}")
    env = {"PGPASSWORD": str(password)} if password else {}
    return make_conninfo(**{key: str(value) for key, value in params.items()}), env
