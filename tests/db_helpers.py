"""Databases with bloat, inventories and `maint db.*` runs for the db maintenance tests."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg import sql

from tests.harness import Cluster
from tests.inventories import write_inventory
from tests.maint_cli import Run, run_maint_cli

ODD_TABLE = "Order Items"
EVIL_TABLE = 'x"; DROP TABLE victim; --'


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@contextmanager
def scratch_database(cluster: Cluster) -> Iterator[str]:
    """A fresh database with a unique name, dropped afterwards."""
    name = unique_name("dbm")
    cluster.create_database(name)
    try:
        yield name
    finally:
        cluster.drop_database(name)


def create_table(
    cluster: Cluster, database: str, table: str, rows: int, schema: str = "public"
) -> None:
    """TABLE (id primary key, payload text indexed, created timestamptz) with ROWS rows.

    Autovacuum is off for it, so only the product under test removes its dead tuples.
    """
    target = sql.Identifier(schema, table)
    with cluster.connect(database) as connection:
        connection.execute(
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, payload text, created timestamptz)"
                " WITH (autovacuum_enabled = false)"
            ).format(target)
        )
        connection.execute(
            sql.SQL(
                "INSERT INTO {} SELECT g, md5(g::text), now() - g * interval '1 minute'"
                " FROM generate_series(1, %s) g"
            ).format(target),
            (rows,),
        )
        connection.execute(
            sql.SQL("CREATE INDEX {} ON {} (payload)").format(
                sql.Identifier(f"{table}_payload"), target
            )
        )
    # In a later session: the loading session's row counts reach the statistics when it ends,
    # and would count as changes made after this ANALYZE.
    cluster.execute(sql.SQL("ANALYZE {}").format(target), dbname=database)


def churn(cluster: Cluster, database: str, table: str, schema: str = "public") -> None:
    """Update half the rows and delete a third: dead tuples in the heap, bloat in the indexes."""
    target = sql.Identifier(schema, table)
    with cluster.connect(database) as connection:
        connection.execute(
            sql.SQL("UPDATE {} SET payload = md5(payload) WHERE id % 2 = 0").format(target)
        )
        connection.execute(sql.SQL("DELETE FROM {} WHERE id % 3 = 0").format(target))


def table_figures(cluster: Cluster, database: str, table: str) -> dict[str, Any]:
    """What a DBA would look at: dead tuples, last vacuum and analyze of TABLE."""
    rows = cluster.execute(
        "SELECT n_dead_tup, last_vacuum, last_analyze, n_mod_since_analyze"
        " FROM pg_stat_user_tables WHERE relname = %s",
        (table,),
        dbname=database,
    )
    dead, vacuumed, analyzed, modified = rows[0]
    return {"dead": dead, "vacuumed": vacuumed, "analyzed": analyzed, "modified": modified}


def index_size(cluster: Cluster, database: str, index: str, schema: str = "public") -> int:
    rows = cluster.execute(
        "SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n"
        " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, index),
        dbname=database,
    )
    return int(rows[0][0])


def db_inventory(path: Path, cluster: Cluster, databases: list[str], **maintenance: Any) -> Path:
    """One local host whose postgres vars point at CLUSTER's DATABASES."""
    postgres: dict[str, Any] = {"dsn": cluster.dsn(), "databases": databases}
    if maintenance:
        postgres["maintenance"] = maintenance
    return write_inventory(path, {"db1": {"ansible_connection": "local", "postgres": postgres}})


def run_maint_text(task: str, inventory: Path, *args: str, process: bool = False) -> Run:
    """Run `maint TASK -i INVENTORY ARGS` as a user would.

    In this process through the console script's entry point (fast), or, with PROCESS, as the
    installed console script itself.
    """
    argv = [task, "-i", str(inventory), *args]
    if process:
        done = subprocess.run(["maint", *argv], capture_output=True, text=True, timeout=120)
        return Run(done.returncode, done.stdout, done.stderr)
    return run_maint_cli(argv)


def run_maint(
    task: str, inventory: Path, *args: str, process: bool = False
) -> tuple[int, dict, str]:
    """`maint TASK -i INVENTORY --json ARGS`: (exit code, JSON document, stderr)."""
    done = run_maint_text(task, inventory, "--json", *args, process=process)
    document = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, document, done.stderr


def rows_of(document: dict) -> list[dict]:
    """The per-object rows of the first (only) host."""
    return document["results"][0]["details"]["rows"]


def by_object(document: dict) -> dict[str, dict]:
    return {row["object"]: row for row in rows_of(document)}
