"""`mysql` sources (MariaDB and MySQL): one `mariadb-dump --single-transaction` (or mysqldump)
per database, each its own backup `<source>.<database>`.

The host's python3 runs mysql_script.py, which runs the dump tool and passes its output on,
counting each table's rows in the dump's INSERT statements as they go by: the counts are the
rows the dump holds, so exactly the snapshot's (InnoDB tables; `--single-transaction` gives
no consistent view of MyISAM ones). The password travels in MYSQL_PWD, never in argv.

A drill loads the dump into a scratch database with the `mariadb` (or `mysql`) client,
compares every table's rows with the manifest's and drops the scratch database. It runs on
the drilling host: with a `restore_target`, that host's server, reached as that host's
source of the same name says (else by this source's URL as that host sees it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from backups.archive.manifest import Manifest
from backups.archive.transfer import DumpError
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.settings.sources import MysqlSource as MysqlSettings

from .base import (
    Drilled,
    DumpCommand,
    Source,
    compare_counts,
    password,
    private_dir,
    run_python,
    stderr_tail,
)
from .command import scratch_name

SCRIPT = (Path(__file__).parent / "mysql_script.py").read_text()


class MysqlSource(Source):
    kind = "mysql"
    settings: MysqlSettings

    def units(self) -> list[str]:
        return [f"{self.name}.{database}" for database in self.settings.databases]

    def extension(self) -> str:
        return "sql"

    def database(self, unit: str) -> str:
        """The database UNIT (`<source>.<database>`) holds."""
        return unit.removeprefix(f"{self.name}.")

    @contextmanager
    def dump(self, runner: Runner, unit: str) -> Iterator[DumpCommand]:
        client, env = connection(self.settings)
        try:
            versions = run_python(runner, SCRIPT, ["versions", *client], "mysql version", env=env)
        except MaintError as exc:
            raise DumpError(str(exc)) from exc
        with private_dir(runner, "maint-mysql") as directory:
            counts_path = f"{directory}/counts.json"

            def counts() -> dict[str, int]:
                found = json.loads(runner.run(["cat", counts_path]).check().stdout)
                return {table: int(rows) for table, rows in found.items()}

            yield DumpCommand(
                command=[
                    "python3", "-I", "-S", "-c", SCRIPT,
                    "dump", counts_path, self.database(unit), *client,
                ],
                env=env,
                counts=counts,
                server_version=versions["server"],
                tool_version=versions["tool"],
            )  # fmt: skip

    def drill(self, runner: Runner, unit: str, path: str, manifest: Manifest) -> Drilled:
        scratch = scratch_name(unit, datetime.now(UTC))
        client, env = connection(self._server_on(runner))
        started = time.monotonic()
        found = run_python(
            runner, SCRIPT, ["drill", path, scratch, *client], "mysql drill", env=env
        )
        drilled = Drilled(scratch=scratch, restore_s=round(time.monotonic() - started, 3))
        if found["error"]:
            drilled.reasons.append(stderr_tail(found["error"]))
            return drilled
        drilled.counts, drilled.reasons = compare_counts(manifest.counts, found["counts"])
        return drilled

    def occupied(self, runner: Runner, into: str) -> bool:
        """Whether the database INTO has tables, on the server RUNNER's host uses."""
        client, env = connection(self._server_on(runner))
        found = run_python(runner, SCRIPT, ["tables", into, *client], "mysql tables", env=env)
        return bool(found["tables"])

    def restore(self, runner: Runner, unit: str, path: str, into: str) -> None:
        """Load the dump at PATH into the database INTO (made when missing) on the server
        RUNNER's host uses; the dump drops and recreates each of its tables."""
        client, env = connection(self._server_on(runner))
        found = run_python(
            runner, SCRIPT, ["restore", path, into, *client], "mysql restore", env=env
        )
        if found["error"]:
            raise MaintError(f"restoring {into} failed: {stderr_tail(found['error'])}")

    def _server_on(self, runner: Runner) -> MysqlSettings:
        """The server drills and restores on RUNNER's host use: that host's own source of
        this name when it has one (a restore_target, --target), else this source's."""
        for settings in runner.host.settings.backup.sources:
            if isinstance(settings, MysqlSettings) and settings.name == self.name:
                return settings
        return self.settings


def connection(settings: MysqlSettings) -> tuple[list[str], dict[str, str]]:
    """The clients' connection options for SETTINGS' server and their environment (the
    password, from password_env or the URL, when there is one)."""
    target = urlsplit(settings.mysql)
    options = [f"--host={target.hostname or 'localhost'}", f"--port={target.port or 3306}"]
    if target.username:
        options.append(f"--user={unquote(target.username)}")
    secret = password(settings.mysql, settings.password_env)
    return options, ({"MYSQL_PWD": secret} if secret is not None else {})
