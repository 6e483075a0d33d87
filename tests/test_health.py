"""health.check against a real cluster: thresholds that are crossed turn the check red."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import psycopg
import pytest

from tests.db_helpers import scratch_database
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli


def run_health(inventory: Path, *extra: str) -> tuple[int, dict, str]:
    done = run_maint_cli(["health.check", "--inventory", str(inventory), "--json", *extra])
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def checks_by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["results"][0]["details"]["checks"]}


def local_db_host(cluster, **health) -> dict:
    return {
        "db": {"ansible_connection": "local", "postgres": {"dsn": cluster.dsn()}, "health": health}
    }


def test_healthy_server_is_ok_and_reports_version(prod_cluster, tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        local_db_host(prod_cluster, disk_warn_free_pct=0, disk_crit_free_pct=0),
    )
    code, report, _ = run_health(inventory)
    assert code == 0, report
    checks = checks_by_name(report)
    assert checks["postgres version"]["value"].startswith("15")
    assert checks["postgres connections"]["state"] == "OK"
    assert checks["disk /"]["state"] == "OK"


def test_password_never_appears_in_output(prod_cluster, tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv.yaml", local_db_host(prod_cluster))
    done = run_maint_cli(["health.check", "-i", str(inventory), "--json"])
    assert prod_cluster.password not in done.stdout + done.stderr


def test_disk_thresholds_give_warning_then_critical(prod_cluster, tmp_path: Path) -> None:
    """With thresholds above the real free space, the disk check turns WARNING, then CRITICAL."""
    warn = write_inventory(
        tmp_path / "w.yaml",
        {"h": {"ansible_connection": "local", "health": {"disk_warn_free_pct": 100}}},
    )
    code, report, _ = run_health(warn)
    assert (code, report["results"][0]["details"]["state"]) == (1, "WARNING")
    crit = write_inventory(
        tmp_path / "c.yaml",
        {
            "h": {
                "ansible_connection": "local",
                "health": {"disk_warn_free_pct": 100, "disk_crit_free_pct": 100},
            }
        },
    )
    code, report, _ = run_health(crit)
    assert (code, report["results"][0]["status"]) == (2, "failed")
    assert "disk /" in report["results"][0]["error"]


def test_missing_disk_path_is_unknown(tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inv.yaml", {"h": {"ansible_connection": "local"}})
    code, report, _ = run_health(inventory, "--disk-path", "/", "--disk-path", "/no/such/dir")
    assert code == 3
    assert checks_by_name(report)["disk /no/such/dir"]["state"] == "UNKNOWN"


def test_connection_usage_past_threshold_is_critical(prod_cluster, tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        local_db_host(
            prod_cluster,
            disk_warn_free_pct=0,
            disk_crit_free_pct=0,
            connections_warn_pct=0.1,
            connections_crit_pct=0.2,
        ),
    )
    code, report, _ = run_health(inventory)
    assert code == 2
    assert checks_by_name(report)["postgres connections"]["state"] == "CRITICAL"


def test_long_query_and_idle_transaction_are_counted(prod_cluster, tmp_path: Path) -> None:
    """A 30 s pg_sleep and an idle open transaction cross 1 s thresholds and are reported."""
    idle = prod_cluster.connect(autocommit=False)
    idle.execute("SELECT 1")
    sleeper = prod_cluster.connect()
    thread = threading.Thread(target=_sleep_quietly, args=(sleeper,), daemon=True)
    thread.start()
    try:
        import time

        time.sleep(1.5)
        inventory = write_inventory(
            tmp_path / "inv.yaml",
            local_db_host(
                prod_cluster,
                disk_warn_free_pct=0,
                disk_crit_free_pct=0,
                long_query_seconds=1,
                idle_in_transaction_seconds=1,
            ),
        )
        code, report, _ = run_health(inventory)
    finally:
        prod_cluster.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'SELECT pg_sleep(30)%'"
        )
        thread.join(10)
        idle.close()
        sleeper.close()
    checks = checks_by_name(report)
    assert checks["postgres long queries"]["value"] == 1
    assert checks["postgres idle in transaction"]["value"] == 1
    assert checks["postgres long queries"]["state"] == "WARNING"
    assert code == 1


def _sleep_quietly(connection: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.Error):
        connection.execute("SELECT pg_sleep(30)")


def test_unreachable_database_is_critical(tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "db": {
                "ansible_connection": "local",
                "postgres": {
                    "dsn": "postgresql://maint:topsecret@127.0.0.1:1/postgres",
                    "connect_timeout": 2,
                },
                "health": {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0},
            }
        },
    )
    code, report, stderr = run_health(inventory)
    assert code == 2
    assert checks_by_name(report)["postgres"]["state"] == "CRITICAL"
    assert "topsecret" not in json.dumps(report) + stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--inventory", "/no/such.yaml"], 3, "inventory file not found"),
        (
            ["--inventory", "{inventory}", "--limit", "nosuchhost"],
            3,
            "'nosuchhost' matches no host",
        ),
        (["--inventory", "{inventory}", "--no-such-flag"], 2, "No idea what '--no-such-flag' is"),
    ],
)
def test_bad_input_is_refused_without_traceback(tmp_path: Path, args, code, message) -> None:
    """Bad input gives one message; health.check exits UNKNOWN (3), a bad flag exits 2."""
    inventory = write_inventory(tmp_path / "inv.yaml", {"h": {"ansible_connection": "local"}})
    argv = [arg.format(inventory=inventory) for arg in args]
    done = run_maint_cli(["health.check", *argv])
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_database_never_backed_up_is_critical(prod_cluster, tmp_path: Path) -> None:
    """postgres.databases unset: health lists the server's databases as backup.db does, so a
    database that has no backup at all is CRITICAL instead of invisible."""
    store = tmp_path / "store"
    host = local_db_host(prod_cluster, disk_warn_free_pct=0, disk_crit_free_pct=0)
    host["db"]["backup"] = {"store": str(store)}
    inventory = write_inventory(tmp_path / "inv.yaml", host)
    with scratch_database(prod_cluster) as backed, scratch_database(prod_cluster) as never:
        done = run_maint_cli(["backup.db", "-i", str(inventory), "--database", backed])
        assert done.returncode == 0, done.stderr
        code, report, _ = run_health(inventory)
    checks = checks_by_name(report)
    assert checks[f"backup {backed}"]["state"] == "OK"
    assert checks[f"backup {never}"]["state"] == "CRITICAL"
    assert checks[f"backup {never}"]["message"] == "no complete backup found"
    assert "backup postgres" in checks and code == 2
