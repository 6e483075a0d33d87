"""A throwaway MariaDB server on a free loopback port with a password-protected account.

There is no Python MySQL driver in the project (the mysql backup source drives the
`mariadb` and `mariadb-dump` clients on the host), so the harness talks to the server with
the same `mariadb` client, the password in MYSQL_PWD rather than argv.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port, log_tail, wait_until

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"

# Durability is pointless for test data; these make the install and every commit faster.
FAST_OPTIONS = (
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-size=64M",
    "--skip-log-bin",
    "--skip-name-resolve",
)


@dataclass
class MariaDB:
    """A running mariadbd reachable at 127.0.0.1:port as ``user`` with ``password``."""

    port: int
    password: str
    workdir: Path
    process: subprocess.Popen = field(repr=False)
    startup_s: float = 0.0
    user: str = "backup"
    host: str = "127.0.0.1"

    @property
    def socket(self) -> Path:
        return self.workdir / "mysqld.sock"

    def url(self) -> str:
        """mysql:// URL without the password, as an inventory writes it next to password_env."""
        return f"mysql://{self.user}@{self.host}:{self.port}"

    def sql(self, statement: str, database: str | None = None) -> list[list[str]]:
        """Run STATEMENT as the password-protected user over TCP; rows as lists of text."""
        command = [CLIENT, "--no-defaults", f"--host={self.host}", f"--port={self.port}"]
        command += [f"--user={self.user}", "--batch", "--skip-column-names", "--raw"]
        if database:
            command.append(f"--database={database}")
        completed = subprocess.run(
            [*command, "--execute", statement],
            env={**os.environ, "MYSQL_PWD": self.password},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode:
            raise RuntimeError(f"mariadb exited {completed.returncode}: {completed.stderr}")
        return [line.split("\t") for line in completed.stdout.splitlines()]

    def count(self, database: str, table: str) -> int:
        quoted = "`" + table.replace("`", "``") + "`"
        return int(self.sql(f"SELECT COUNT(*) FROM {quoted}", database)[0][0])  # noqa: S608

    def databases(self) -> set[str]:
        return {row[0] for row in self.sql("SHOW DATABASES")}

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and delete its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_mariadb(*, timeout: float = 60.0) -> MariaDB:
    """Install a data directory, start mariadbd on a free port and create the ``backup`` user.

    The user gets every privilege over TCP from 127.0.0.1 with a random password; root only
    logs in through the socket (unix_socket authentication), as on a Debian server.
    """
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="maint-mariadb-"))
    datadir = workdir / "data"
    try:
        _install(datadir, timeout)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    port = free_port()
    log = workdir / "mariadbd.log"
    process = subprocess.Popen(
        [
            MARIADBD,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={workdir / 'mysqld.sock'}",
            f"--pid-file={workdir / 'mysqld.pid'}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--log-error={log}",
            *FAST_OPTIONS,
        ],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = MariaDB(port, secrets.token_urlsafe(16), workdir, process)
    if not wait_until(
        lambda: _root_answers(server), timeout=timeout, alive=lambda: process.poll() is None
    ):
        tail = log_tail(log)
        server.stop()
        raise RuntimeError(f"mariadbd on port {port} did not answer:\n{tail}")
    _root_sql(
        server,
        f"CREATE USER '{server.user}'@'127.0.0.1' IDENTIFIED BY '{server.password}';"
        f" GRANT ALL PRIVILEGES ON *.* TO '{server.user}'@'127.0.0.1';",
    )
    server.startup_s = time.monotonic() - started
    return server


def _install(datadir: Path, timeout: float) -> None:
    """mariadb-install-db into DATADIR; once more into a fresh one if it fails (it did once
    here in many runs, on a loaded machine, leaving a half-made directory). Raise
    RuntimeError with its output when the second attempt fails too."""
    command = [INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--user=root", "--skip-test-db"]
    for attempt in (1, 2):
        done = subprocess.run(
            command,
            cwd=datadir.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode == 0:
            return
        shutil.rmtree(datadir, ignore_errors=True)
        if attempt == 2:
            raise RuntimeError(
                f"mariadb-install-db exited {done.returncode}:\n{done.stdout[-2000:]}"
                f"{done.stderr[-2000:]}"
            )


def _root_sql(server: MariaDB, statement: str) -> subprocess.CompletedProcess:
    """Run STATEMENT as root through the socket (statement on stdin: it may hold a password)."""
    return subprocess.run(
        [CLIENT, "--no-defaults", f"--socket={server.socket}", "--user=root"],
        input=statement,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def _root_answers(server: MariaDB) -> bool:
    try:
        _root_sql(server, "SELECT 1")
    except subprocess.CalledProcessError:
        return False
    return True
