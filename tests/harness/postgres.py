"""Throwaway PostgreSQL 15 clusters managed with Debian's pg_*cluster wrappers.

Each test cluster is a real server on loopback TCP with scram auth, so code under test
has to present the right password exactly as it would against a production host.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from .net import free_port, log_tail

PG_VERSION = "15"
SOCKET_DIR = Path("/var/run/postgresql")
CONF_ROOT = Path("/etc/postgresql") / PG_VERSION
DATA_ROOT = Path("/var/lib/postgresql") / PG_VERSION
LOG_ROOT = Path("/var/log/postgresql")
PROTECTED = frozenset({"main"})

# Durability is pointless for test data; these make initdb and every commit much faster.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass
class Cluster:
    """A running test cluster reachable over TCP as a password-protected superuser."""

    name: str
    port: int
    password: str
    host: str = "127.0.0.1"
    superuser: str = "maint"

    def dsn(self, dbname: str = "postgres", *, with_password: bool = True) -> str:
        """libpq URI for the superuser; without the password to test PGPASSWORD paths."""
        auth = quote(self.superuser, safe="")
        if with_password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        """Superuser connection over TCP (autocommit so CREATE DATABASE etc. just work)."""
        return psycopg.connect(self.dsn(dbname), autocommit=autocommit, connect_timeout=10)

    def execute(
        self, query: str | sql.Composable, params: Any = None, dbname: str = "postgres"
    ) -> list[tuple]:
        """Run one statement in its own connection and return its rows ([] if none)."""
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def create_database(self, name: str) -> None:
        """(Re)create an empty database so each test starts from a known state."""
        self.drop_database(name)
        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """Drop a database if present, kicking out leftover sessions."""
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def stop(self) -> None:
        """Stop the server (fast mode), e.g. to test behaviour against a down database."""
        _ctl(self.name, "stop", "-m", "fast")

    def start(self) -> None:
        """Start the server again and wait until it accepts connections."""
        _start_server(self.name)

    def destroy(self) -> None:
        """Stop and delete the cluster and its data; safe to call twice."""
        drop_cluster(self.name)

    @property
    def log_path(self) -> Path:
        """Server log, handy in assertion messages."""
        return LOG_ROOT / f"postgresql-{PG_VERSION}-{self.name}.log"


@contextmanager
def process_cluster(prefix: str, role: str) -> Iterator[Cluster]:
    """A cluster `<prefix>_<role>_<pid>` for this process, destroyed on exit (Ctrl-C included).

    The pid in the name keeps concurrent test runs and benchmarks off each other's clusters;
    clusters of earlier processes with PREFIX that died (pid gone) are dropped first.
    """
    for conf in CONF_ROOT.glob(f"{prefix}_*_*"):
        pid = conf.name.rsplit("_", 1)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            drop_cluster(conf.name)
    cluster = start_cluster(f"{prefix}_{role}_{os.getpid()}")
    try:
        yield cluster
    finally:
        cluster.destroy()


def start_cluster(name: str, port: int | None = None) -> Cluster:
    """Create and start a fresh cluster with a ``maint`` superuser and a random password.

    A stale cluster of the same name (left behind by a crashed run) is dropped first.
    """
    if name in PROTECTED:
        raise ValueError(f"refusing to manage protected cluster {name!r}")
    drop_cluster(name)
    port = port or free_port()
    _run(
        [
            "pg_createcluster",
            PG_VERSION,
            name,
            "-p",
            str(port),
            "--",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ],
        what=f"pg_createcluster {name}",
    )
    # Debian's postgresql.conf includes conf.d/; pg_createcluster -o quotes values oddly.
    settings = "".join(f"{key} = '{value}'\n" for key, value in FAST_SETTINGS.items())
    (CONF_ROOT / name / "conf.d" / "maint-test.conf").write_text(settings)
    cluster = Cluster(name=name, port=port, password=secrets.token_urlsafe(24))
    try:
        _start_server(name)
        with psycopg.connect(
            host=str(SOCKET_DIR),
            port=port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}").format(
                    sql.Identifier(cluster.superuser), sql.Literal(cluster.password)
                )
            )
    except Exception:
        tail = log_tail(cluster.log_path)
        drop_cluster(name)
        raise RuntimeError(f"cluster {name} on port {port} failed to start:\n{tail}") from None
    return cluster


def _ensure_socket_dir() -> None:
    """Fresh machines (no systemd/tmpfiles) lack the socket dir the server needs."""
    SOCKET_DIR.mkdir(parents=True, exist_ok=True)
    shutil.chown(SOCKET_DIR, "postgres", "postgres")
    SOCKET_DIR.chmod(0o2775)


def _start_server(name: str) -> None:
    """Start via pg_ctl -w: ready as soon as the server is, unlike pg_ctlcluster start,
    which polls in 0.5 s steps and then probes again (~2 s instead of ~0.1 s)."""
    _ensure_socket_dir()
    config = CONF_ROOT / name / "postgresql.conf"
    _run(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            f"/usr/lib/postgresql/{PG_VERSION}/bin/pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-s",
            "-D",
            str(DATA_ROOT / name),
            "-l",
            str(LOG_ROOT / f"postgresql-{PG_VERSION}-{name}.log"),
            "-o",
            f"-c config_file={config}",
        ],
        what=f"pg_ctl start {name}",
        new_session=True,
    )


def _ctl(name: str, action: str, *extra: str) -> None:
    _run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, name, action, *extra],
        what=f"pg_ctlcluster {name} {action}",
    )


def drop_cluster(name: str) -> None:
    """Remove a test cluster by name if it exists (never the protected 'main')."""
    if name in PROTECTED:
        raise ValueError(f"refusing to drop protected cluster {name!r}")
    conf_dir = CONF_ROOT / name
    if (conf_dir / "postgresql.conf").exists():
        _run(["pg_dropcluster", "--stop", PG_VERSION, name], what=f"pg_dropcluster {name}")
    # pg_dropcluster leaves conf.d behind with our settings file in it: every later run would
    # take the leftover for a dead process's cluster and call pg_dropcluster on it again
    # (0.1 s each, hundreds after a day of runs). A half-removed cluster (config gone, data
    # left) would make pg_createcluster fail.
    for leftover in (conf_dir, DATA_ROOT / name):
        if leftover.exists():
            shutil.rmtree(leftover)


def _run(argv: list[str], *, what: str, new_session: bool = False) -> None:
    # cwd="/" because the wrappers switch to user postgres, who cannot enter /root.
    result = subprocess.run(
        argv,
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
        # Own session for the postmaster (as pg_ctlcluster does), so a Ctrl-C aimed at
        # pytest does not shut the server down under the fixture's teardown.
        start_new_session=new_session,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
