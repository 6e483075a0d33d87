"""The one way every task reaches a host's PostgreSQL server.

`reach(host, runner, task)` yields a `Postgres` for the host: its `connect()` opens
connections from this machine (named `maint <task>` so DBAs can tell who is connected), and
its `client()` gives what a client tool run on the host (pg_dump, pg_restore, psql) needs.
Every `postgres.*` setting applies the same to every task, because there is no other path.

`postgres.ssh_tunnel: true` is for a server that listens only where the host sees it (its
loopback, a private network): the DSN is then written as the host sees the server, this
machine's connections go through the host's SSH connection to that address, and client
tools on the host connect to the DSN directly (they already are where the server listens).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, MaintError
from .inventory import Host
from .runners import Runner
from .secrets import mask_text
from .settings.postgres import PostgresSettings, dsn_params, tunnel_target

if TYPE_CHECKING:
    import psycopg

# psycopg is imported where a connection is made, not here: health.check on hosts without a
# DSN (and every task's start) would otherwise pay about 0.08 s for it on every run.

_CONNECTABLE = (
    "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"
)


class DatabaseError(MaintError):
    """A PostgreSQL error, with any password in its text masked."""


def host_dsn(host: Host) -> str:
    """The host's `postgres.dsn`. Raise ConfigError if the host has none."""
    dsn = host.settings.postgres.dsn
    if not dsn:
        raise ConfigError(f"host {host.name!r}: key 'postgres.dsn' is not set")
    return dsn


class Postgres:
    """HOST's server for TASK; PARAMS override the DSN's libpq parameters (a tunnel's end)."""

    def __init__(self, host: Host, task: str, params: dict[str, Any] | None = None) -> None:
        self.host = host
        self.task = task
        self.params = params or {}
        self.settings: PostgresSettings = host.settings.postgres
        self.dsn = host_dsn(host)

    def connect(self, dbname: str | None = None, *, autocommit: bool = True) -> psycopg.Connection:
        """A connection from this machine to DBNAME (default: the DSN's). Raise DatabaseError."""
        overrides: dict[str, Any] = {
            "application_name": f"maint {self.task}",
            "connect_timeout": self.settings.connect_timeout_s,
            **self.params,
        }
        if dbname is not None:
            overrides["dbname"] = dbname
        import psycopg

        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, **overrides)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL: {mask_text(str(exc)).strip()}"
            ) from None

    def databases(self, connection: psycopg.Connection | None = None) -> list[str]:
        """`postgres.databases`, else every database of the server that accepts connections
        and is not a template: what backup.db backs up, health.check expects backups of and
        db tasks work in. CONNECTION, if given, is used rather than a new one. Raise
        DatabaseError if the server cannot be reached."""
        if self.settings.databases:
            return list(self.settings.databases)
        if connection is not None:
            return [str(row[0]) for row in connection.execute(_CONNECTABLE).fetchall()]
        with self.connect() as connection:
            return [str(row[0]) for row in connection.execute(_CONNECTABLE).fetchall()]

    def client(self, dbname: str) -> tuple[str, dict[str, str]]:
        """Conninfo for a client tool run on the host, and the environment carrying its password.

        The DSN as written: with a tunnel it already names the server as the host sees it.
        The password is removed from the conninfo, because a command line is visible to every
        user of the host; it travels as PGPASSWORD in the process's environment instead.
        """
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.dsn)
        password = params.pop("password", None)
        params.update(
            dbname=dbname,
            application_name=f"maint {self.task}",
            connect_timeout=self.settings.connect_timeout_s,
        )
        env = {"PGPASSWORD": str(password)} if password else {}
        return make_conninfo(**{key: str(value) for key, value in params.items()}), env


@contextmanager
def reach(host: Host, runner: Runner, task: str) -> Iterator[Postgres]:
    """HOST's server for TASK, through RUNNER's SSH connection when `postgres.ssh_tunnel` asks.

    The tunnel lasts as long as the block. Raise ConfigError if the host has no DSN.
    """
    host_dsn(host)
    if not host.settings.postgres.ssh_tunnel:
        yield Postgres(host, task)
        return
    try:
        remote = tunnel_target(dsn_params(host_dsn(host)))
    except ValueError as exc:  # load_inventory has refused these already; a hand-made Host
        raise ConfigError(f"host {host.name!r}: key 'postgres': {exc}") from None
    with runner.tunnel(*remote) as (address, port):
        if (address, port) == remote:  # a local runner: already on the host
            yield Postgres(host, task)
            return
        # hostaddr (numeric: the tunnel listens on 127.0.0.1) keeps the DSN's host name for
        # TLS verification and .pgpass while the connection goes to the tunnel.
        yield Postgres(host, task, {"hostaddr": address, "port": port})
