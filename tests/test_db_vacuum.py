"""db.vacuum and db.analyze on a real cluster: only the tables that need it, never blocked."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.db_helpers import (
    EVIL_TABLE,
    ODD_TABLE,
    by_object,
    churn,
    create_table,
    db_inventory,
    run_maint,
    run_maint_text,
    scratch_database,
    table_figures,
)

ROWS = 6000


@pytest.fixture
def bloated(prod_cluster):
    """A database with two churned tables (orders, events) and two clean ones."""
    with scratch_database(prod_cluster) as name:
        for table in ("orders", "events", "customers", "products"):
            create_table(prod_cluster, name, table, ROWS)
        churn(prod_cluster, name, "orders")
        churn(prod_cluster, name, "events")
        # A few dead tuples, below the default minimum: not worth a VACUUM.
        prod_cluster.execute("DELETE FROM products WHERE id <= 10", dbname=name)
        yield name


def test_vacuum_touches_only_bloated_tables_and_dead_tuples_drop(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """Only the churned tables are vacuumed; their dead tuples go to zero, the others untouched."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    code, report, _ = run_maint("db.vacuum", inventory, process=True)
    assert code == 0, report
    result = report["results"][0]
    assert result["status"] == "changed"
    rows = by_object(report)
    assert set(rows) == {"public.orders", "public.events"}
    for row in rows.values():
        assert row["status"] == "done"
        assert row["dead_tuples_before"] >= 2500
        assert row["dead_tuples_after"] == 0
        assert row["size_after"] > 0 and row["size_before"] > 0
    for table in ("orders", "events"):
        figures = table_figures(prod_cluster, bloated, table)
        assert figures["dead"] == 0 and figures["vacuumed"] is not None
    for table in ("customers", "products"):
        assert table_figures(prod_cluster, bloated, table)["vacuumed"] is None
    assert report["summary"] == {
        "ok": 0,
        "changed": 1,
        "failed": 0,
        "unreachable": 0,
        "skipped": 0,
    }


def test_second_vacuum_finds_nothing_to_do(prod_cluster, bloated, tmp_path: Path) -> None:
    """Once vacuumed, a run has nothing to do: status ok, no rows."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    assert run_maint("db.vacuum", inventory)[0] == 0
    code, report, _ = run_maint("db.vacuum", inventory)
    assert code == 0
    assert report["results"][0]["status"] == "ok"
    assert by_object(report) == {}


def test_dry_run_prints_exact_statements_and_changes_nothing(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """--dry-run shows the VACUUM statements with quoted names, and no table is vacuumed."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    done = run_maint_text("db.vacuum", inventory, "--dry-run", process=True)
    assert done.returncode == 0, done.stderr
    assert 'VACUUM (ANALYZE) "public"."orders";' in done.stdout
    assert 'VACUUM (ANALYZE) "public"."events";' in done.stdout
    assert '"customers"' not in done.stdout
    assert "set_config('lock_timeout', '5000ms'" in done.stdout
    for table in ("orders", "events"):
        figures = table_figures(prod_cluster, bloated, table)
        assert figures["vacuumed"] is None and figures["dead"] > 0


def test_dry_run_piped_into_a_closed_reader_ends_quietly(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """`maint db.vacuum --dry-run | head -0`: no traceback, no host reported as crashed."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    process = subprocess.Popen(
        ["maint", "db.vacuum", "-i", str(inventory), "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the reader is gone before maint prints anything
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 1, stderr  # stopped early, as Unix tools do
    assert "Traceback" not in stderr and "crashed" not in stderr, stderr
    assert table_figures(prod_cluster, bloated, "orders")["vacuumed"] is None


def test_locked_table_is_skipped_within_lock_timeout(prod_cluster, bloated, tmp_path: Path) -> None:
    """A table someone holds locked is skipped after lock_timeout and reported; others go on."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated], lock_timeout="1s")
    holder = prod_cluster.connect(bloated, autocommit=False)
    try:
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        code, report, _ = run_maint("db.vacuum", inventory)
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert code == 0, report
    rows = by_object(report)
    assert rows["public.orders"]["status"] == "skipped"
    assert "could not lock within 1s" in rows["public.orders"]["note"]
    assert rows["public.events"]["status"] == "done"
    assert elapsed < 10, f"took {elapsed:.1f}s: waited on the lock instead of skipping"
    assert table_figures(prod_cluster, bloated, "orders")["vacuumed"] is None


def test_vacuum_waits_no_longer_than_lock_timeout_for_a_share_lock(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """A SHARE lock (a CREATE INDEX in progress) stops VACUUM itself: skipped, not waited on."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    holder = prod_cluster.connect(bloated, autocommit=False)
    try:
        holder.execute("LOCK TABLE events IN SHARE MODE")
        code, report, _ = run_maint("db.vacuum", inventory, "--lock-timeout", "0.5s")
    finally:
        holder.rollback()
        holder.close()
    assert code == 0
    row = by_object(report)["public.events"]
    assert (row["status"], row["note"]) == ("skipped", "could not lock within 0.5s")
    assert by_object(report)["public.orders"]["status"] == "done"


def test_odd_identifiers_are_vacuumed_and_nothing_else_happens(
    prod_cluster, tmp_path: Path
) -> None:
    """Tables named "Order Items" and x"; DROP TABLE victim; -- are vacuumed; victim survives."""
    with scratch_database(prod_cluster) as name:
        create_table(prod_cluster, name, "victim", 100)
        for table in (ODD_TABLE, EVIL_TABLE):
            create_table(prod_cluster, name, table, ROWS)
            churn(prod_cluster, name, table)
        inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [name])
        code, report, _ = run_maint("db.vacuum", inventory)
        assert code == 0, report
        rows = by_object(report)
        assert set(rows) == {'public."Order Items"', 'public."x""; DROP TABLE victim; --"'}
        assert {row["table"] for row in rows.values()} == {ODD_TABLE, EVIL_TABLE}
        for table in (ODD_TABLE, EVIL_TABLE):
            assert table_figures(prod_cluster, name, table)["dead"] == 0
        count = prod_cluster.execute("SELECT count(*) FROM victim", dbname=name)[0][0]
        assert count == 100


def test_all_flag_vacuums_every_table(prod_cluster, bloated, tmp_path: Path) -> None:
    """--all vacuums clean tables too."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    code, report, _ = run_maint("db.vacuum", inventory, "--all")
    assert code == 0
    assert set(by_object(report)) == {
        "public.orders",
        "public.events",
        "public.customers",
        "public.products",
    }


def test_full_needs_its_flag_and_warns(prod_cluster, bloated, tmp_path: Path) -> None:
    """--full runs VACUUM FULL, shrinking the table, and says why that blocks."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    code, report, stderr = run_maint("db.vacuum", inventory, "--full")
    assert code == 0
    row = by_object(report)["public.orders"]
    assert row["action"] == "vacuum full"
    assert row["size_after"] < row["size_before"]
    assert "ACCESS EXCLUSIVE" in report["results"][0]["details"]["warning"]
    assert "ACCESS EXCLUSIVE" in stderr


def test_analyze_only_stale_tables_with_server_messages(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """db.analyze --verbose analyzes the churned tables only and keeps the server's messages."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated])
    code, report, _ = run_maint("db.analyze", inventory, "--verbose")
    assert code == 0, report
    rows = by_object(report)
    assert set(rows) == {"public.orders", "public.events"}
    for table, row in (("orders", rows["public.orders"]), ("events", rows["public.events"])):
        assert row["modified_before"] >= 2500 and row["modified_after"] == 0
        assert any("analyzing" in message for message in row["messages"])
        assert table_figures(prod_cluster, bloated, table)["modified"] == 0


def test_one_missing_database_fails_the_host_but_not_the_others(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """A database that does not exist is reported as failed (exit 1); the others are still done."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["no_such_db", bloated])
    code, report, _ = run_maint("db.vacuum", inventory)
    assert code == 1
    result = report["results"][0]
    assert result["status"] == "failed"
    assert "no_such_db" in result["error"]
    assert {row["object"] for row in result["details"]["rows"]} == {
        "public.orders",
        "public.events",
    }
    assert prod_cluster.password not in str(report)


@pytest.mark.parametrize(
    ("maintenance", "flags", "expected"),
    [
        ({"vacuum_dead_ratio": 2}, [], "vacuum_dead_ratio"),
        ({"lock_timout": "1s"}, [], "postgres.maintenance.lock_timout: unknown key 'lock_timout'"),
        ({}, ["--lock-timeout", "soon"], "--lock-timeout"),
    ],
)
def test_bad_settings_exit_2_naming_the_key(
    prod_cluster, tmp_path: Path, maintenance, flags, expected
) -> None:
    """Bad vars or flags stop the task before anything runs, with exit 2 and no traceback."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"], **maintenance)
    done = run_maint_text("db.vacuum", inventory, *flags, process=True)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


def test_connections_name_the_task(prod_cluster, bloated, tmp_path: Path) -> None:
    """While it works, the task shows in pg_stat_activity as 'maint db.vacuum'."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [bloated], lock_timeout="2s")
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(
                prod_cluster.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name = 'maint db.vacuum'",
                    (bloated,),
                )[0][0]
            )
            time.sleep(0.1)

    holder = prod_cluster.connect(bloated, autocommit=False)
    holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # keeps the task busy 2s
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_maint("db.vacuum", inventory)
    finally:
        stop.set()
        watcher.join()
        holder.rollback()
        holder.close()
    assert max(seen) == 1
