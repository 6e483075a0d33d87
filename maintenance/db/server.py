"""A host's PostgreSQL as the db tasks use it: every connection with the maintenance timeouts.

Connections come from `pg.reach`, the one path every task takes, so `postgres.ssh_tunnel` and
every other `postgres.*` setting apply to the db tasks as to backup, restore and health.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import psycopg

from .. import pg
from ..inventory import Host
from ..runners import Runner
from ..secrets import mask_text
from ..settings.postgres import MaintenanceSettings
from . import statements
from .execution import StatementRunner
from .outcome import DatabaseRun

DatabaseWork = Callable[[StatementRunner, DatabaseRun], None]


class Server:
    """Opens connections to one host's server, each with the maintenance timeouts set."""

    def __init__(self, postgres: pg.Postgres, settings: MaintenanceSettings) -> None:
        self.postgres = postgres
        self.settings = settings
        self.timeouts = statements.set_timeouts(settings.lock_timeout, settings.statement_timeout)

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit connection to DBNAME (default: the DSN's). Raise DatabaseError."""
        connection = self.postgres.connect(dbname)
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
        """REQUESTED, else `postgres.databases`, else every connectable database."""
        return list(requested) if requested else self.postgres.databases()


@contextmanager
def open_server(
    host: Host, runner: Runner, task: str, settings: MaintenanceSettings
) -> Iterator[Server]:
    """HOST's server for TASK, reached the one way every task reaches it."""
    with pg.reach(host, runner, task) as postgres:
        yield Server(postgres, settings)


def each_database(
    host: Host,
    runner: Runner,
    task: str,
    settings: MaintenanceSettings,
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
    host: Host,
    runner: Runner,
    task: str,
    settings: MaintenanceSettings,
    *,
    dry_run: bool,
    work: DatabaseWork,
) -> DatabaseRun:
    """Call WORK once in the DSN's database, for cluster-wide tasks (sessions)."""
    with open_server(host, runner, task, settings) as server:
        return server.work_in(None, dry_run, work)
