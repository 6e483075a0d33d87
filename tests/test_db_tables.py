"""db.vacuum --table and db.analyze --table: the runbook's `ANALYZE vehicle_makes`, on a real
cluster; a table that is not there is refused before any statement runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.db_helpers import (
    EVIL_TABLE,
    by_object,
    churn,
    create_table,
    db_inventory,
    run_maint,
    scratch_database,
    table_figures,
)


@pytest.fixture(scope="module")
def shop(prod_cluster):
    """orders churned (its dead tuples call for a VACUUM), vehicle_makes and an evil name clean,
    and a second `vehicle_makes` in schema `archive`."""
    with scratch_database(prod_cluster) as name:
        for table in ("orders", "vehicle_makes", EVIL_TABLE, "victim"):
            create_table(prod_cluster, name, table, 3000)
        prod_cluster.execute("CREATE SCHEMA archive", dbname=name)
        create_table(prod_cluster, name, "vehicle_makes", 10, schema="archive")
        churn(prod_cluster, name, "orders")
        yield name


def test_vacuum_table_vacuums_the_named_tables_only(prod_cluster, shop, tmp_path: Path) -> None:
    """--table vacuums a clean table and a schema-qualified one; the bloated one is left alone."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [shop])
    args = ("--table", "public.vehicle_makes", "--table", EVIL_TABLE)
    code, report, _ = run_maint("db.vacuum", inventory, *args)
    assert code == 0, report
    rows = by_object(report)
    assert set(rows) == {"public.vehicle_makes", 'public."x""; DROP TABLE victim; --"'}
    assert {row["status"] for row in rows.values()} == {"done"}
    assert table_figures(prod_cluster, shop, "orders")["dead"] > 0
    assert table_figures(prod_cluster, shop, EVIL_TABLE)["vacuumed"] is not None
    assert prod_cluster.execute("SELECT count(*) FROM victim", dbname=shop)[0][0] == 3000


def test_analyze_table_as_the_runbook_does(prod_cluster, shop, tmp_path: Path) -> None:
    """`db.analyze --table archive.vehicle_makes` analyzes that one table, fresh or not."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [shop])
    query = (
        "SELECT schemaname, coalesce(last_analyze, 'epoch') FROM pg_stat_user_tables"
        " WHERE relname = 'vehicle_makes'"
    )
    before = dict(prod_cluster.execute(query, dbname=shop))
    code, report, _ = run_maint("db.analyze", inventory, "--table", "archive.vehicle_makes")
    assert code == 0, report
    assert [(row["object"], row["status"]) for row in report["results"][0]["details"]["rows"]] == [
        ("archive.vehicle_makes", "done")
    ]
    after = dict(prod_cluster.execute(query, dbname=shop))
    assert after["archive"] > before["archive"] and after["public"] == before["public"]


@pytest.mark.parametrize(
    ("names", "says"),
    [
        (["vehicle_mak"], "no table 'vehicle_mak' in database {db}; did you mean 'vehicle_makes'?"),
        (["vehicle_makes"], "table 'vehicle_makes' is ambiguous in database {db}: "
                            "archive.vehicle_makes, public.vehicle_makes (give the schema)"),
        (["orders", "sales.orders"], "no table 'sales.orders' in database {db}"),
    ],
    ids=["typo", "ambiguous", "wrong-schema"],
)  # fmt: skip
def test_a_table_that_is_not_there_fails_before_any_statement(
    prod_cluster, shop, tmp_path: Path, names: list[str], says: str
) -> None:
    """A missing or ambiguous --table fails the host naming it; no table is vacuumed."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [shop])
    args = [arg for name in names for arg in ("--table", name)]
    before = table_figures(prod_cluster, shop, "orders")
    code, report, _ = run_maint("db.vacuum", inventory, *args)
    assert code == 1
    result = report["results"][0]
    assert result["status"] == "failed" and says.format(db=shop) in result["error"]
    assert result["details"]["databases"][0]["statements"][1:] == []
    assert table_figures(prod_cluster, shop, "orders") == before


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--table", "orders", "--all"], "--table and --all exclude each other"),
     (["--table", ""], "--table: expected a table name, got an empty one")],
    ids=["with-all", "empty"],
)  # fmt: skip
def test_bad_table_flags_exit_2(prod_cluster, tmp_path: Path, args: list[str], says: str) -> None:
    """Contradictory or empty --table flags are refused before any host is reached."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    code, _, stderr = run_maint("db.analyze", inventory, *args)
    assert code == 2 and says in stderr
