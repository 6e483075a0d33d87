"""db.purge on a real cluster: exactly the old rows go, in batches, then the table is vacuumed."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from psycopg import sql

from tests.db_helpers import (
    EVIL_TABLE,
    by_object,
    db_inventory,
    run_maint,
    run_maint_text,
    scratch_database,
    table_figures,
    unique_name,
)
from tests.inventories import write_inventory

OLD, NEW = 1000, 1500


def make_events(cluster, database: str, table: str = "events") -> None:
    """OLD rows from 100-200 days ago interleaved with NEW rows from the last 80 days."""
    target = sql.Identifier(table)
    with cluster.connect(database) as connection:
        connection.execute(
            sql.SQL(
                "CREATE TABLE {} (id serial PRIMARY KEY, created_at timestamptz NOT NULL,"
                " kind int) WITH (autovacuum_enabled = false)"
            ).format(target)
        )
        connection.execute(
            sql.SQL(
                "INSERT INTO {} (created_at, kind) SELECT CASE WHEN g %% 5 < 2"
                " THEN now() - interval '100 days' - (g %% 100) * interval '1 day'"
                " ELSE now() - (g %% 80) * interval '1 day' END, g"
                " FROM generate_series(1, %s) g ORDER BY random()"
            ).format(target),
            (OLD + NEW,),
        )


OLDER_THAN_90_DAYS = sql.SQL("created_at < now() - interval '90 days'")
EVERY_ROW = sql.SQL("true")


def count(cluster, database: str, table: str, where: sql.Composable = EVERY_ROW) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), where)
    return cluster.execute(query, dbname=database)[0][0]


@pytest.fixture
def events_db(prod_cluster):
    with scratch_database(prod_cluster) as name:
        make_events(prod_cluster, name)
        yield name


def test_purge_deletes_exactly_the_old_rows_in_batches(
    prod_cluster, events_db, tmp_path: Path
) -> None:
    """1000 old rows go in 4 batches of at most 300; the 1500 recent ones stay; then VACUUM."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [events_db])
    code, report, _ = run_maint(
        "db.purge",
        inventory,
        *("--database", events_db, "--table", "events", "--column", "created_at"),
        *("--older-than", "90d", "--batch", "300", "--pause", "0.05s"),
        process=True,
    )
    assert code == 0, report
    row = by_object(report)["public.events"]
    assert (row["status"], row["rows_deleted"], row["batches"]) == ("done", OLD, 4)
    assert row["vacuum"] == "done" and row["dead_tuples_after"] == 0
    assert report["results"][0]["status"] == "changed"
    assert count(prod_cluster, events_db, "events") == NEW
    assert count(prod_cluster, events_db, "events", OLDER_THAN_90_DAYS) == 0
    assert table_figures(prod_cluster, events_db, "events")["vacuumed"] is not None


def test_purge_dry_run_counts_rows_and_deletes_nothing(
    prod_cluster, events_db, tmp_path: Path
) -> None:
    """--dry-run says 1000 rows would go, prints the DELETE and VACUUM, and deletes nothing."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [events_db])
    args = ("--database", events_db, "--table", "events", "--column", "created_at")
    done = run_maint_text("db.purge", inventory, *args, "--older-than", "90d", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert 'DELETE FROM ONLY "public"."events" WHERE ctid = ANY(ARRAY(' in done.stdout
    assert 'WHERE "created_at" < ' in done.stdout and "LIMIT 10000" in done.stdout
    assert 'VACUUM (ANALYZE) "public"."events";' in done.stdout
    assert re.search(
        r"older than 90 days, before \d{4}-\d\d-\d\d \d\d:\d\d UTC: "
        r"would delete 1 000 of 2 500 rows \(10 000 a batch\)",
        done.stdout,
    ), done.stdout
    assert count(prod_cluster, events_db, "events") == OLD + NEW


@pytest.mark.parametrize(
    ("age", "words", "interval"),
    [("12mo", "1 year", "12 months"), ("90d", "90 days", "90 days"),
     ("1y6mo", "1 year 6 months", "18 months")],
)  # fmt: skip
def test_purge_dry_run_states_its_cutoff_as_an_age_and_a_utc_time(
    prod_cluster, events_db, tmp_path: Path, age: str, words: str, interval: str
) -> None:
    """--json details carry the age as written, in words, and the cutoff in UTC on the
    calendar (12mo is twelve calendar months, not 360 days); the counts are of that cutoff.

    PostgreSQL's own calendar arithmetic is the reference; it clamps at a month's end where
    the product rolls over as restic does, at most 3 days apart, while 12 months of 30 days
    would be 5 days off.
    """
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [events_db])
    args = ("--database", events_db, "--table", "events", "--column", "created_at")
    expected = prod_cluster.execute("SELECT now() - %s::interval", (interval,))[0][0]
    code, report, _ = run_maint("db.purge", inventory, *args, "--older-than", age, "--dry-run")
    assert code == 0, report
    row = by_object(report)["public.events"]
    cutoff = datetime.fromisoformat(row["cutoff"])
    assert cutoff.utcoffset() == timedelta(0)
    assert abs(cutoff - expected) < timedelta(days=3, minutes=1)
    assert (row["older_than"], row["older_than_words"]) == (age, words)
    older = sql.SQL("created_at < {}").format(sql.Literal(cutoff))
    assert row["rows_to_delete"] == count(prod_cluster, events_db, "events", older)
    assert row["rows_total"] == OLD + NEW
    assert row["note"].startswith(f"older than {words}, before {cutoff:%Y-%m-%d %H:%M} UTC: ")
    assert count(prod_cluster, events_db, "events") == OLD + NEW


@pytest.mark.parametrize("age", ["12m", "90", "1h30m"])
def test_purge_refuses_ambiguous_ages(prod_cluster, events_db, tmp_path: Path, age: str) -> None:
    """m and bare numbers select data to delete: refused with the way out, nothing deleted."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [events_db])
    args = ("--database", events_db, "--table", "events", "--column", "created_at")
    code, _, stderr = run_maint("db.purge", inventory, *args, "--older-than", age)
    assert code == 2, stderr
    assert "--older-than: ambiguous: write " in stderr and "Traceback" not in stderr
    assert count(prod_cluster, events_db, "events") == OLD + NEW


def test_purge_rules_from_vars_handle_odd_table_names(prod_cluster, tmp_path: Path) -> None:
    """Rules in postgres.maintenance.purge purge each table, odd names included, nothing else."""
    with scratch_database(prod_cluster) as database:
        make_events(prod_cluster, database)
        make_events(prod_cluster, database, EVIL_TABLE)
        make_events(prod_cluster, database, "victim")
        rules = [
            {"database": database, "table": "events", "column": "created_at", "older_than": "90d"},
            {
                "database": database,
                "table": EVIL_TABLE,
                "column": "created_at",
                "older_than": "90d",
                "batch": 400,
            },
        ]
        inventory = db_inventory(
            tmp_path / "inv.yaml", prod_cluster, [database], purge=rules, purge_pause="0s"
        )
        code, report, _ = run_maint("db.purge", inventory)
        assert code == 0, report
        rows = by_object(report)
        assert rows['public."x""; DROP TABLE victim; --"']["batches"] == 3
        assert {row["rows_deleted"] for row in rows.values()} == {OLD}
        for table in ("events", EVIL_TABLE):
            assert count(prod_cluster, database, table) == NEW
        assert count(prod_cluster, database, "victim") == OLD + NEW


def test_purge_refuses_a_column_that_is_not_a_time(prod_cluster, events_db, tmp_path: Path) -> None:
    """An integer column fails the host with a clear reason; no row is deleted."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [events_db])
    code, report, _ = run_maint(
        "db.purge",
        inventory,
        *("--database", events_db, "--table", "events", "--column", "kind"),
        *("--older-than", "90d"),
    )
    assert code == 1
    assert "purge needs a date or timestamp column" in report["results"][0]["error"]
    assert count(prod_cluster, events_db, "events") == OLD + NEW


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--table", "events", "--column", "created_at", "--older-than", "0d"], "longer than zero"),
        (["--table", "events", "--column", "created_at"], "--table needs --older-than"),
        (["--column", "created_at"], "need --table"),
    ],
)
def test_purge_refuses_ambiguous_input(prod_cluster, tmp_path: Path, args, message) -> None:
    """A zero age or a half-given rule exits 2 before anything runs."""
    inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, ["postgres"])
    code, _, stderr = run_maint("db.purge", inventory, *args)
    assert code == 2 and message in stderr


def purge_without_database(inventory: Path, table: str) -> tuple[int, dict, str]:
    return run_maint(
        "db.purge", inventory,
        *("--table", table, "--column", "created_at", "--older-than", "90d", "--pause", "0s"),
    )  # fmt: skip


def test_purge_without_database_finds_the_table_in_the_inventory_databases(
    prod_cluster, tmp_path: Path
) -> None:
    """`--table` without `--database` purges the one database that holds the table (listed in
    postgres.databases, else any of the server's); several or none are refused, named."""
    table = unique_name("events")
    with scratch_database(prod_cluster) as first, scratch_database(prod_cluster) as second:
        make_events(prod_cluster, second, table)
        listed = db_inventory(tmp_path / "listed.yaml", prod_cluster, [first, second])
        code, report, _ = purge_without_database(listed, table)
        assert code == 0, report
        assert by_object(report)[f"public.{table}"]["database"] == second
        assert count(prod_cluster, second, table) == NEW

        unset = write_inventory(
            tmp_path / "unset.yaml",
            {"db1": {"ansible_connection": "local", "postgres": {"dsn": prod_cluster.dsn()}}},
        )
        only_here = unique_name("stale")  # unique on the whole shared cluster
        make_events(prod_cluster, second, only_here)
        code, report, _ = purge_without_database(unset, only_here)
        assert code == 0, report
        assert by_object(report)[f"public.{only_here}"]["database"] == second

        make_events(prod_cluster, first, table)
        code, report, _ = purge_without_database(listed, table)
        assert code == 1
        error = report["results"][0]["error"]
        assert f"exists in several databases: {first}, {second}" in error
        assert count(prod_cluster, first, table) == OLD + NEW

        code, report, _ = purge_without_database(listed, "nosuchtable")
        assert code == 1
        error = report["results"][0]["error"]
        assert error == f"table public.nosuchtable not found in any of {first}, {second}"


def test_default_schedule_purge_job_does_nothing_on_a_host_without_rules(
    prod_cluster, tmp_path: Path
) -> None:
    """The default schedule's monthly db.purge, run as the daemon runs it: the host with rules
    purges; the host without any reports ok without touching the same table, and the job is ok.
    """
    from maintenance.cli.collection import build_namespace
    from maintenance.scheduler.catalog import catalog_from
    from maintenance.scheduler.child import run_job
    from maintenance.scheduler.config import load_settings

    with scratch_database(prod_cluster) as database:
        make_events(prod_cluster, database)
        rule = {"table": "events", "column": "created_at", "older_than": "90d"}
        postgres = {"dsn": prod_cluster.dsn(), "databases": [database]}
        inventory = write_inventory(
            tmp_path / "inv.yaml",
            {
                "plain": {"ansible_connection": "local", "postgres": postgres},
                "ruled": {
                    "ansible_connection": "local",
                    "postgres": {
                        **postgres,
                        "maintenance": {"purge": [{**rule, "database": database}]},
                    },
                },
            },
        )
        settings = load_settings(inventory, catalog_from(build_namespace()), environ={})
        assert settings.default_schedule
        job = next(job for job in settings.jobs if job.task == "db.purge")
        assert (job.describe(), job.limit, job.args) == ("every month on day 1 at 01:00", None, ())

        outcome = run_job(job, inventory)
        assert outcome.status == "ok", outcome.error
        hosts = {host["host"]: host for host in outcome.hosts}
        assert hosts["plain"]["status"] == "ok"
        assert hosts["ruled"]["status"] == "changed"
        assert count(prod_cluster, database, "events") == NEW
        assert count(prod_cluster, database, "events", OLDER_THAN_90_DAYS) == 0

        # Alone, the host without rules leaves the table whole and says why.
        make_events(prod_cluster, database, "kept")
        code, report, _ = run_maint("db.purge", inventory, "--limit", "plain", process=True)
        assert code == 0, report
        assert report["summary"] == {
            "ok": 1, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 0
        }  # fmt: skip
        assert report["results"][0]["summary"] == "no purge rules for this host"
        assert count(prod_cluster, database, "kept") == OLD + NEW
