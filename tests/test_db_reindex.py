"""db.reindex, db.bloat and db.unused_indexes on a real cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import errors

from tests.db_helpers import (
    EVIL_TABLE,
    by_object,
    churn,
    create_table,
    db_inventory,
    index_size,
    run_maint,
    run_maint_text,
    scratch_database,
)

ROWS = 6000
SMALL_INDEXES = {"reindex_min_size": "64kB"}


@pytest.fixture(params=["statistics", "pgstattuple"])
def bloated(request, prod_cluster):
    """Churned and vacuumed 'orders' (bloated indexes) beside clean 'customers', with or
    without the pgstattuple extension."""
    with scratch_database(prod_cluster) as name:
        if request.param == "pgstattuple":
            prod_cluster.execute("CREATE EXTENSION pgstattuple", dbname=name)
        create_table(prod_cluster, name, "orders", ROWS)
        create_table(prod_cluster, name, "customers", ROWS)
        churn(prod_cluster, name, "orders")
        prod_cluster.execute("VACUUM ANALYZE orders", dbname=name)
        yield name, request.param


def test_reindex_rebuilds_only_bloated_indexes_and_they_shrink(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """Both churned indexes are rebuilt concurrently and shrink; the clean table's stay."""
    database, method = bloated
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database], **SMALL_INDEXES)
    before = {
        name: index_size(prod_cluster, database, name) for name in ("orders_pkey", "orders_payload")
    }
    code, report, _ = run_maint("db.reindex", inventory)
    assert code == 0, report
    assert report["results"][0]["status"] == "changed"
    rows = by_object(report)
    assert set(rows) == {"public.orders_pkey", "public.orders_payload"}
    for name, row in rows.items():
        index = name.split(".")[1]
        assert (row["status"], row["method"]) == ("done", method)
        assert row["bloat_before"] >= 0.3 and row["bloat_after"] < 0.15
        assert row["size_after"] < row["size_before"] * 0.7
        assert index_size(prod_cluster, database, index) == row["size_after"] < before[index]
    valid = prod_cluster.execute(
        "SELECT bool_and(indisvalid), count(*) FROM pg_index WHERE indrelid = 'orders'::regclass",
        dbname=database,
    )
    assert valid == [(True, 2)]


def test_reindex_dry_run_prints_statements_and_rebuilds_nothing(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """--dry-run lists REINDEX INDEX CONCURRENTLY statements; index sizes stay as they were."""
    database, _ = bloated
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database], **SMALL_INDEXES)
    size = index_size(prod_cluster, database, "orders_payload")
    done = run_maint_text("db.reindex", inventory, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert 'REINDEX INDEX CONCURRENTLY "public"."orders_payload";' in done.stdout
    assert "customers" not in done.stdout
    assert index_size(prod_cluster, database, "orders_payload") == size
    blocking = run_maint_text("db.reindex", inventory, "--dry-run", "--blocking")
    assert 'REINDEX INDEX "public"."orders_payload";' in blocking.stdout
    assert "SHARE lock" in blocking.stderr


def _cancelled_concurrent_rebuild(cluster, database: str, index: str) -> None:
    """What an operator's interrupted REINDEX CONCURRENTLY leaves: an invalid <index>_ccnew."""
    with cluster.connect(database) as connection:
        connection.execute("SET statement_timeout = '50ms'")
        with pytest.raises(errors.QueryCanceled):
            connection.execute(f"REINDEX INDEX CONCURRENTLY {index}")


def test_invalid_ccnew_left_by_cancelled_rebuild_is_found_and_dropped(
    prod_cluster, tmp_path: Path
) -> None:
    """The dry run shows the DROP; the real run drops the invalid _ccnew and keeps the original."""
    with scratch_database(prod_cluster) as database:
        create_table(prod_cluster, database, "big", 300_000)
        _cancelled_concurrent_rebuild(prod_cluster, database, "big_payload")
        invalid = (
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE NOT i.indisvalid"
        )
        assert prod_cluster.execute(invalid, dbname=database) == [("big_payload_ccnew",)]
        inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database])

        planned = run_maint_text("db.reindex", inventory, "--dry-run")
        assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."big_payload_ccnew";' in planned.stdout
        assert prod_cluster.execute(invalid, dbname=database) == [("big_payload_ccnew",)]

        code, report, _ = run_maint("db.reindex", inventory)
        assert code == 0, report
        row = by_object(report)["public.big_payload_ccnew"]
        assert (row["action"], row["status"], row["when"]) == ("drop invalid", "done", "before")
        assert report["results"][0]["status"] == "changed"
        assert prod_cluster.execute(invalid, dbname=database) == []
        names = prod_cluster.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'big'::regclass"
            " ORDER BY 1",
            dbname=database,
        )
        assert names == [("big_payload",), ("big_pkey",)]


def test_odd_index_names_are_rebuilt_safely(prod_cluster, tmp_path: Path) -> None:
    """An index of table x"; DROP TABLE victim; -- is rebuilt; the victim table survives."""
    with scratch_database(prod_cluster) as database:
        create_table(prod_cluster, database, "victim", 10)
        create_table(prod_cluster, database, EVIL_TABLE, ROWS)
        churn(prod_cluster, database, EVIL_TABLE)
        prod_cluster.execute(
            f'VACUUM "{EVIL_TABLE.replace(chr(34), 2 * chr(34))}"', dbname=database
        )
        inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database], **SMALL_INDEXES)
        code, report, _ = run_maint("db.reindex", inventory)
        assert code == 0, report
        indexes = {row["index"] for row in by_object(report).values()}
        assert indexes == {f"{EVIL_TABLE}_pkey", f"{EVIL_TABLE}_payload"}
        assert prod_cluster.execute("SELECT count(*) FROM victim", dbname=database) == [(10,)]


def test_bloat_report_lists_the_churned_relations_first(
    prod_cluster, bloated, tmp_path: Path
) -> None:
    """db.bloat puts the churned table and its indexes above the clean ones, largest waste first."""
    database, method = bloated
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database])
    code, report, _ = run_maint("db.bloat", inventory, "--min-size", "0")
    assert code == 0, report
    rows = report["results"][0]["details"]["rows"]
    wasted = [row["wasted"] for row in rows]
    assert wasted == sorted(wasted, reverse=True)
    top = {row["object"] for row in rows[:3]}
    assert top == {"public.orders", "public.orders_pkey", "public.orders_payload"}
    assert {row["method"] for row in rows} == {method}
    customers = next(row for row in rows if row["object"] == "public.customers")
    assert customers["ratio"] < 0.1
    assert report["results"][0]["status"] == "ok"


def test_unused_indexes_leave_out_constraint_indexes(prod_cluster, tmp_path: Path) -> None:
    """A never-scanned plain index is listed; primary key and unique indexes never are."""
    with scratch_database(prod_cluster) as database:
        create_table(prod_cluster, database, "orders", 2000)
        prod_cluster.execute(
            "CREATE UNIQUE INDEX orders_created ON orders (created)", dbname=database
        )
        prod_cluster.execute("SELECT * FROM orders WHERE id = 5", dbname=database)
        inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database])
        code, report, _ = run_maint("db.unused-indexes", inventory)
        assert code == 0, report
        rows = by_object(report)
        assert set(rows) == {"public.orders_payload"}
        assert rows["public.orders_payload"]["size"] > 0
        assert "stats_reset" in report["results"][0]["details"]["databases"][0]
