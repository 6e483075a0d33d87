"""db.long_queries and db.idle_connections against real sessions on a real cluster."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.db_helpers import by_object, db_inventory, run_maint, unique_name


@pytest.fixture
def app_role(prod_cluster) -> Iterator[tuple[str, str]]:
    """An ordinary (non-superuser) login role, as an application would use; dropped after."""
    name, password = unique_name("app"), "app-role-secret"
    prod_cluster.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    try:
        yield name, password
    finally:
        prod_cluster.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,)
        )
        prod_cluster.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _connect_as(cluster, role: tuple[str, str], application: str) -> psycopg.Connection:
    user, password = role
    return psycopg.connect(
        host=cluster.host,
        port=cluster.port,
        user=user,
        password=password,
        dbname="postgres",
        application_name=application,
        autocommit=True,
    )


class Sleeper:
    """A session running `SELECT pg_sleep(...)` in a thread until it ends or is stopped."""

    def __init__(self, connection: psycopg.Connection, seconds: int = 60) -> None:
        self.connection = connection
        self.pid = connection.info.backend_pid
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._sleep, args=(seconds,), daemon=True)
        self.thread.start()

    def _sleep(self, seconds: int) -> None:
        try:
            self.connection.execute("SELECT pg_sleep(%s)", (seconds,))
        except psycopg.Error as exc:
            self.error = exc

    def stop(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.connection.cancel_safe()
        self.thread.join(timeout=10)
        self.connection.close()


def _alive(cluster, pid: int) -> bool:
    return bool(cluster.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)))


def _wait_until_gone(cluster, pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(cluster, pid):
            return True
        time.sleep(0.1)
    return False


def test_long_queries_terminate_ends_the_sleeping_session_and_nothing_else(
    prod_cluster, app_role, tmp_path: Path
) -> None:
    """Only the application's pg_sleep session ends; a superuser's sleep and idle sessions stay."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    app_sleep = Sleeper(_connect_as(prod_cluster, app_role, "report job"))
    admin_sleep = Sleeper(prod_cluster.connect())
    idle = _connect_as(prod_cluster, app_role, "idle pool member")
    try:
        time.sleep(1.5)
        code, report, _ = run_maint(
            "db.long-queries", inventory, "--older-than", "1s", "--terminate", process=True
        )
        assert code == 0, report
        rows = by_object(report)
        assert set(rows) == {f"pid {app_sleep.pid}", f"pid {admin_sleep.pid}"}
        app_row = rows[f"pid {app_sleep.pid}"]
        assert (app_row["status"], app_row["action"]) == ("done", "terminate")
        assert app_row["user"] == app_role[0] and app_row["application"] == "report job"
        assert "pg_sleep" in app_row["query"] and app_row["duration_s"] >= 1
        assert rows[f"pid {admin_sleep.pid}"]["status"] == "skipped"
        assert "superuser" in rows[f"pid {admin_sleep.pid}"]["note"]
        assert report["results"][0]["status"] == "changed"

        assert _wait_until_gone(prod_cluster, app_sleep.pid)
        app_sleep.thread.join(timeout=10)
        assert isinstance(app_sleep.error, psycopg.OperationalError)
        assert _alive(prod_cluster, admin_sleep.pid)
        assert admin_sleep.thread.is_alive()
        assert idle.execute("SELECT 1").fetchone() == (1,)
    finally:
        app_sleep.stop()
        admin_sleep.stop()
        idle.close()


def test_long_queries_lists_without_acting_and_dry_run_signals_nothing(
    prod_cluster, app_role, tmp_path: Path
) -> None:
    """Without a flag the queries are only listed; --dry-run shows the statement and sends none."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    sleeper = Sleeper(_connect_as(prod_cluster, app_role, "batch"))
    try:
        time.sleep(1.2)
        code, report, _ = run_maint("db.long-queries", inventory, "--older-than", "1s")
        assert code == 0
        row = by_object(report)[f"pid {sleeper.pid}"]
        assert (row["action"], row["status"]) == ("list", "reported")
        assert report["results"][0]["status"] == "ok"

        code, report, _ = run_maint(
            "db.long-queries", inventory, "--older-than", "1s", "--cancel", "--dry-run"
        )
        assert code == 0
        assert by_object(report)[f"pid {sleeper.pid}"]["status"] == "planned"
        statements = report["results"][0]["details"]["databases"][0]["statements"]
        assert any(
            f'pg_cancel_backend"(pid) FROM pg_stat_activity WHERE pid = {sleeper.pid}' in s
            for s in statements
        )
        time.sleep(0.3)
        assert sleeper.thread.is_alive() and sleeper.error is None
    finally:
        sleeper.stop()


def test_cancel_and_terminate_together_is_bad_input(prod_cluster, tmp_path: Path) -> None:
    """--cancel with --terminate is refused with exit 2."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    code, _, stderr = run_maint("db.long-queries", inventory, "--cancel", "--terminate")
    assert code == 2 and "exclude each other" in stderr


def test_idle_in_transaction_sessions_are_terminated_and_plain_idle_ones_kept(
    prod_cluster, app_role, tmp_path: Path
) -> None:
    """--in-transaction --terminate ends a session idle inside a transaction, not an idle one."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    stuck = _connect_as(prod_cluster, app_role, "forgot to commit")
    stuck.autocommit = False
    stuck.execute("SELECT 1")
    pooled = _connect_as(prod_cluster, app_role, "pool")
    try:
        time.sleep(1.2)
        code, report, _ = run_maint(
            "db.idle-connections",
            inventory,
            "--older-than",
            "1s",
            "--in-transaction",
            "--terminate",
        )
        assert code == 0, report
        rows = by_object(report)
        stuck_pid, pooled_pid = stuck.info.backend_pid, pooled.info.backend_pid
        assert set(rows) == {f"pid {stuck_pid}"}
        assert rows[f"pid {stuck_pid}"]["state"] == "idle in transaction"
        assert _wait_until_gone(prod_cluster, stuck_pid)
        assert pooled.execute("SELECT 1").fetchone() == (1,)

        code, report, _ = run_maint("db.idle-connections", inventory, "--older-than", "0s")
        assert f"pid {pooled_pid}" in by_object(report)
    finally:
        stuck.close()
        pooled.close()
