"""A host's PostgreSQL as the db tasks reach it: timeouts set, through an SSH tunnel if asked.

`postgres.ssh_tunnel: true` sends every connection through the host's own SSH connection to
the address of `postgres.dsn` as seen from the host, for servers that listen only there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .. import pg
from ..errors import ConfigError
from ..inventory import Host
from ..runners import Runner
from ..secrets import mask_text
from . import catalog, statements
from .execution import StatementRunner
from .outcome import DatabaseRun
from .settings import Settings

DEFAULT_PORT = 5432

DatabaseWork = Callable[[StatementRunner, DatabaseRun], None]


class Server:
    """Opens connections to one host's server, each with the maintenance timeouts set."""

    def __init__(
        self, host: Host, task: str, settings: Settings, params: dict[str, Any] | None = None
    ) -> None:
        self.host = host
        self.task = task
        self.settings = settings
        self.params = params or {}
        self.timeouts = statements.set_timeouts(settings.lock_timeout, settings.statement_timeout)

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit connection to DBNAME (default: the DSN's). Raise DatabaseError."""
        connection = pg.connect(self.host, self.task, dbname=dbname, **self.params)
        try:
            connection.execute(self.timeouts.query, self.timeouts.params)
        except psycopg.Error as exc:
            connection.close()
            raise pg.DatabaseError(f"cannot set timeouts: {mask_text(str(exc))}") from None
        return connection

    def work_in(self, name: str | None, dry_run: bool, work: DatabaseWork) -> DatabaseRun:
        """Call WORK in database NAME (None: the DSN's); errors end up in the run, not raised."""
        run = DatabaseRun(name or "(default)")
        try:
            with self.connect(name) as connection:
                run.name = connection.info.dbname
                executor = StatementRunner(connection, self.settings, dry_run, run.name)
                run.statements = executor.statements
                executor.statements.append(self.timeouts.text(connection))
                work(executor, run)
        except (pg.DatabaseError, psycopg.Error) as exc:
            run.error = mask_text(str(exc).strip())
        return run

    def databases(self, requested: Sequence[str] = ()) -> list[str]:
        """Databases to work on: REQUESTED, else `postgres.databases`, else every connectable one.

        Raise ConfigError if `postgres.databases` is not a name or a list of names.
        """
        if requested:
            return list(requested)
        configured = self.host.var("postgres.databases")
        if configured:
            return database_names(configured, self.host.name)
        with self.connect() as connection:
            return catalog.connectable_databases(connection)


def database_names(value: Any, host_name: str) -> list[str]:
    """`postgres.databases` as a list. Raise ConfigError naming the host otherwise."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(name, str) and name for name in value):
        return list(value)
    raise ConfigError(
        f"host {host_name!r}: key 'postgres.databases': expected a list of database names,"
        f" got {value!r}"
    )


def tunnel_target(host: Host) -> tuple[str, int]:
    """Where the DSN points, as seen from the host itself (a socket path means its localhost)."""
    params = conninfo_to_dict(pg.host_dsn(host))
    address = str(params.get("hostaddr") or params.get("host") or "localhost")
    if "," in address:
        raise ConfigError(
            f"host {host.name!r}: key 'postgres.ssh_tunnel': a DSN with several hosts"
            " cannot go through one tunnel"
        )
    if address.startswith("/"):
        address = "localhost"
    return address, int(params.get("port") or DEFAULT_PORT)


def wants_tunnel(host: Host) -> bool:
    """Whether HOST's vars ask for connections through its SSH connection."""
    return str(host.var("postgres.ssh_tunnel", False)).strip().lower() in ("true", "yes", "1", "on")


@contextmanager
def open_server(host: Host, runner: Runner, task: str, settings: Settings) -> Iterator[Server]:
    """HOST's server for TASK, tunnelled over RUNNER's SSH connection when the vars ask."""
    if not wants_tunnel(host):
        yield Server(host, task, settings)
        return
    remote = tunnel_target(host)
    with runner.tunnel(*remote) as (address, port):
        if (address, port) == remote:
            yield Server(host, task, settings)
            return
        # hostaddr (numeric: the tunnel listens on 127.0.0.1) keeps the DSN's host name for
        # TLS verification and .pgpass while the connection goes to the tunnel.
        yield Server(host, task, settings, {"hostaddr": address, "port": port})


def each_database(
    host: Host,
    runner: Runner,
    task: str,
    settings: Settings,
    *,
    dry_run: bool,
    requested: Sequence[str] = (),
    work: DatabaseWork,
) -> list[DatabaseRun]:
    """Call WORK once per target database of HOST; one database failing never stops the next.

    Raise DatabaseError if the server cannot be reached to list its databases.
    """
    with open_server(host, runner, task, settings) as server:
        return [server.work_in(name, dry_run, work) for name in server.databases(requested)]


def on_server(
    host: Host, runner: Runner, task: str, settings: Settings, *, dry_run: bool, work: DatabaseWork
) -> DatabaseRun:
    """Call WORK once in the DSN's database, for cluster-wide tasks (sessions)."""
    with open_server(host, runner, task, settings) as server:
        return server.work_in(None, dry_run, work)
