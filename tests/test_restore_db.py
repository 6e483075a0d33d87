"""restore.db's ergonomics on real prod and staging clusters: --backup latest, --table (from a
full or a partial backup), restore_checks after the restore, and --force's safety backup.

One prod database is backed up twice for the module (a full and a partial backup); each test
restores into its own database on staging and drops it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backups.archive.freshness import backup_freshness
from backups.archive.manifest import Manifest
from backups.archive.toc import Toc, TocEntry
from backups.postgres.table_list import table_entries
from backups.stores import open_store
from maintenance.inventory import load_inventory
from tests.backup_helpers import table_digests
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "tableshop"
SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL);
CREATE TABLE purchase (id serial PRIMARY KEY, customer_id int REFERENCES customers,
                       amount numeric NOT NULL DEFAULT 0, created timestamptz DEFAULT now());
CREATE INDEX purchase_created ON purchase (created);
CREATE SCHEMA fleet;
CREATE TABLE fleet.vehicle_makes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
INSERT INTO customers (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 200) i;
INSERT INTO purchase (customer_id, amount) SELECT 1 + i % 200, i FROM generate_series(1, 1500) i;
INSERT INTO fleet.vehicle_makes (name) SELECT 'make ' || i FROM generate_series(1, 40) i;
"""


def maint(*args: str) -> tuple[int, dict[str, Any], str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def _inventory(path: Path, prod, staging, store: str, **staging_vars: Any) -> Path:
    checks = [{"name": "purchases", "sql": "SELECT count(*) FROM purchase", "min": 1}]
    hosts = {
        "prod1": {
            "ansible_connection": "local",
            "postgres": {"dsn": prod.dsn(), "databases": [DATABASE]},
            "backup": {"store": store},
            "restore_checks": checks,
        },
        "staging1": {
            "ansible_connection": "local",
            "postgres": {"dsn": staging.dsn()},
            "backup": {"store": store},
            **staging_vars,
        },
    }
    return write_inventory(path, hosts)


@pytest.fixture(scope="module")
def shop(prod_cluster, staging_cluster, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The prod database, its store and inventory, a full backup and a partial one."""
    prod_cluster.create_database(DATABASE)
    with prod_cluster.connect(DATABASE) as connection:
        connection.execute(SCHEMA)
    base = tmp_path_factory.mktemp("restore-db")
    store = str(base / "store")
    inventory = _inventory(base / "inv.yaml", prod_cluster, staging_cluster, store)
    code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr
    full = report["results"][0]["details"]["databases"][0]["key"]
    code, report, stderr = maint(
        "backup.db", "-i", str(inventory), "--limit", "prod1", "--table", "vehicle_makes"
    )
    assert code == 0, stderr
    partial = report["results"][0]["details"]["databases"][0]["key"]
    yield {"inventory": inventory, "store": store, "full": full, "partial": partial}
    prod_cluster.drop_database(DATABASE)


@pytest.fixture
def target(staging_cluster) -> Iterator[str]:
    """A database name on staging, dropped after the test."""
    name = f"restored_{uuid.uuid4().hex[:8]}"
    yield name
    staging_cluster.drop_database(name)


def restore(shop: dict[str, Any], database: str, *args: str) -> tuple[int, dict[str, Any], str]:
    return maint("restore.db", "-i", str(shop["inventory"]), "--target", "staging1",
                 "--database", database, "--yes", *args)  # fmt: skip


def test_partial_backup_is_marked_and_never_the_latest(shop, prod_cluster) -> None:
    """backup.db --table vehicle_makes writes `<db>~partial` holding fleet.vehicle_makes only;
    backup.list shows it under that name; `latest` passes it over."""
    assert shop["partial"].startswith(f"prod1/{DATABASE}~partial/")
    store = open_store(shop["store"])
    manifest = Manifest.from_json(store.get_bytes(shop["partial"] + ".manifest.json"), "partial")
    assert manifest.partial_tables == ["fleet.vehicle_makes"]
    assert manifest.database == DATABASE
    assert {name: count.rows for name, count in manifest.tables.items()} == {
        "fleet.vehicle_makes": 40
    }
    code, report, _ = maint("backup.list", "-i", str(shop["inventory"]), "--limit", "prod1")
    assert code == 0
    listed = {row["database"] for row in report["results"][0]["details"]["rows"]}
    assert {DATABASE, f"{DATABASE}~partial"} <= listed
    code, report, _ = maint("restore.db", "-i", str(shop["inventory"]), "--backup", "latest",
                            "--target", "prod1", "--database", DATABASE, "--force",
                            "--dry-run")  # fmt: skip
    assert code == 0
    plan = report["results"][0]["details"]["plan"]
    assert plan[:2] == [
        f"--backup latest is {shop['full']} in file://{shop['store']}",
        f"back up {DATABASE!r} on prod1 first (safety backup into prod1/{DATABASE}~safety)",
    ]
    assert not any("~safety" in info.key for info in store.list("prod1/"))


def test_backup_of_a_table_that_is_not_there_writes_nothing(shop) -> None:
    """A --table the database lacks fails its backup naming it, before pg_dump runs."""
    store = open_store(shop["store"])
    before = {info.key for info in store.list("prod1/")}
    code, report, _ = maint("backup.db", "-i", str(shop["inventory"]), "--limit", "prod1",
                            "--table", "purchse")  # fmt: skip
    assert code == 1
    assert (
        f"no table 'purchse' in database {DATABASE}; did you mean 'purchase'?"
        in report["results"][0]["error"]
    )
    assert {info.key for info in store.list("prod1/")} == before


def test_latest_of_another_host_restores_one_table_with_its_index_and_sequence(
    shop, prod_cluster, staging_cluster, target
) -> None:
    """HOST/DATABASE/latest --table purchase restores purchase from the full backup, with its
    index, defaults and sequence (restore_checks are for whole restores: not run)."""
    code, report, stderr = restore(shop, target, "--backup", f"prod1/{DATABASE}/latest",
                                   "--table", "purchase")  # fmt: skip
    assert code == 1, stderr  # purchase references customers, which is not restored
    assert "customers" in report["results"][0]["error"]
    staging_cluster.drop_database(target)
    staging_cluster.create_database(target)
    staging_cluster.execute(
        "CREATE TABLE customers (id int PRIMARY KEY);"
        " INSERT INTO customers SELECT generate_series(1, 200)",
        dbname=target,
    )
    code, report, stderr = restore(shop, target, "--backup", f"prod1/{DATABASE}/latest",
                                   "--table", "public.purchase")  # fmt: skip
    assert code == 0, stderr + json.dumps(report)
    result = report["results"][0]
    assert result["details"]["backup"] == shop["full"]
    assert result["details"]["tables"] == ["public.purchase"]
    assert [(c["table"], c["ok"]) for c in result["details"]["counts"]] == [
        ("public.purchase", True)
    ]
    assert result["details"]["checks"] == []
    assert result["details"]["checks_not_run"].startswith("restore_checks not run")
    restored = table_digests(staging_cluster, target)
    assert restored["public.purchase"] == table_digests(prod_cluster, DATABASE)["public.purchase"]
    indexes = staging_cluster.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'purchase' ORDER BY 1", dbname=target
    )
    assert indexes == [("purchase_created",), ("purchase_pkey",)]
    next_id = staging_cluster.execute(
        "INSERT INTO purchase (customer_id) VALUES (NULL) RETURNING id", dbname=target
    )
    assert next_id == [(1501,)]
    again = ("--backup", shop["full"], "--table", "purchase")
    code, report, _ = restore(shop, target, *again)
    assert code == 1
    assert report["results"][0]["error"] == (
        f"database {target!r} on staging1 already has public.purchase; "
        "refusing to restore over them without --force"
    )
    code, report, _ = restore(shop, target, *again, "--force", "--dry-run")
    assert code == 0
    assert (
        "drop and recreate public.purchase on staging1" in report["results"][0]["details"]["plan"]
    )


def test_a_partial_backup_restores_into_a_new_database(
    shop, prod_cluster, staging_cluster, target
) -> None:
    """A partial backup restores whole (its schema created); a table it lacks is refused."""
    code, report, _ = restore(shop, target, "--backup", shop["partial"], "--table", "customers")
    assert code == 1
    assert "no table 'customers' in backup" in report["results"][0]["error"]
    assert staging_cluster.execute(
        "SELECT count(*) FROM pg_database WHERE datname = %s", (target,)
    ) == [(0,)]
    code, report, stderr = restore(shop, target, "--backup", shop["partial"])
    assert code == 0, stderr + json.dumps(report)
    assert table_digests(staging_cluster, target) == {
        "fleet.vehicle_makes": table_digests(prod_cluster, DATABASE)["fleet.vehicle_makes"]
    }


def test_force_takes_a_safety_backup_first(shop, staging_cluster, target) -> None:
    """--force backs the target up as `<db>~safety` before overwriting it, and says where."""
    staging_cluster.create_database(target)
    staging_cluster.execute(
        "CREATE TABLE precious (x int); INSERT INTO precious VALUES (7)", dbname=target
    )
    code, report, stderr = restore(shop, target, "--backup", shop["full"], "--force")
    assert code == 0, stderr + json.dumps(report)
    checks = report["results"][0]["details"]["checks"]
    assert [(check["name"], check["value"], check["ok"]) for check in checks] == [
        ("purchases", 1500, True)
    ]
    safety = report["results"][0]["details"]["safety_backup"]
    assert safety["key"].startswith(f"staging1/{target}~safety/")
    assert safety["key"] in report["results"][0]["summary"]
    store = open_store(shop["store"])
    manifest = Manifest.from_json(store.get_bytes(safety["key"] + ".manifest.json"), "safety")
    assert {name: count.rows for name, count in manifest.tables.items()} == {"public.precious": 1}
    code, report, stderr = restore(shop, target, "--backup", f"staging1/{target}~safety/latest",
                                   "--force", "--no-safety-backup")  # fmt: skip
    assert code == 0, stderr + json.dumps(report)
    details = report["results"][0]["details"]
    assert details["backup"] == safety["key"] and "safety_backup" not in details
    assert details["checks"] == []  # staging1's backup: staging1 sets no restore_checks
    assert staging_cluster.execute("SELECT x FROM precious", dbname=target) == [(7,)]


def test_a_failing_safety_backup_stops_the_restore(
    shop, prod_cluster, staging_cluster, target, tmp_path: Path
) -> None:
    """When the safety backup cannot be written, nothing is restored over the target."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store should be")
    inventory = _inventory(tmp_path / "inv.yaml", prod_cluster, staging_cluster, shop["store"],
                           backup={"store": str(blocker / "store")})  # fmt: skip
    staging_cluster.create_database(target)
    staging_cluster.execute("CREATE TABLE precious (x int)", dbname=target)
    code, report, _ = maint("restore.db", "-i", str(inventory), "--target", "staging1",
                            "--database", target, "--backup", shop["full"], "--store",
                            shop["store"], "--yes", "--force")  # fmt: skip
    assert code == 1
    error = report["results"][0]["error"]
    assert f"safety backup of {target!r} on staging1 failed, nothing was restored" in error
    tables = staging_cluster.execute(
        "SELECT relname FROM pg_stat_user_tables ORDER BY 1", dbname=target
    )
    assert tables == [("precious",)]


def test_bad_backup_and_table_flags_exit_2(shop) -> None:
    """A --backup that is no key nor a latest form, or an empty --table, is refused at once."""
    base = ("restore.db", "-i", str(shop["inventory"]), "--target", "staging1", "--database",
            "x", "--yes")  # fmt: skip
    code, _, stderr = maint(*base, "--backup", "newest")
    assert code == 2 and "'latest' or HOST/DATABASE/latest" in stderr
    code, _, stderr = maint(*base, "--backup", "latest", "--table", "")
    assert code == 2 and "--table: expected a table name" in stderr
    code, _, stderr = maint("backup.db", "-i", str(shop["inventory"]), "--table", "purchase",
                            "--prune")  # fmt: skip
    assert code == 2 and "--prune goes with full backups" in stderr
    code, _, stderr = maint("backup.db", "-i", str(shop["inventory"]), "--table", "purchase",
                            "--source", "cache")  # fmt: skip
    assert code == 2 and "cannot go with --source" in stderr


def test_an_identity_table_restores_into_its_own_schema(shop, staging_cluster, target) -> None:
    """fleet.vehicle_makes from the full backup: schema created, identity sequence at 40."""
    code, report, stderr = restore(shop, target, "--backup", shop["full"],
                                   "--table", "vehicle_makes")  # fmt: skip
    assert code == 0, stderr + json.dumps(report)
    assert report["results"][0]["details"]["tables"] == ["fleet.vehicle_makes"]
    inserted = staging_cluster.execute(
        "INSERT INTO fleet.vehicle_makes (name) VALUES ('new') RETURNING id", dbname=target
    )
    assert inserted == [(41,)]
    tables = staging_cluster.execute("SELECT relname FROM pg_stat_user_tables", dbname=target)
    assert tables == [("vehicle_makes",)]


def _toc(*entries: tuple[int, str, str, str, tuple[int, ...]]) -> Toc:
    made = tuple(
        TocEntry(i, desc, tag, 0, 0, 0, schema, deps) for i, desc, schema, tag, deps in entries
    )
    return Toc((1, 15, 0), 4, 8, made, 0)


# pg_dump 15's TOC of SCHEMA above (ids, kinds, dependencies as read from a real dump).
SHOP_TOC = _toc(
    (6, "SCHEMA", "", "fleet", ()),
    (220, "TABLE", "fleet", "vehicle_makes", (6,)),
    (219, "SEQUENCE", "fleet", "vehicle_makes_id_seq", (220, 6)),
    (216, "TABLE", "public", "customers", ()),
    (215, "SEQUENCE", "public", "customers_id_seq", (216,)),
    (3374, "SEQUENCE OWNED BY", "public", "customers_id_seq", (215,)),
    (218, "TABLE", "public", "purchase", ()),
    (3208, "DEFAULT", "public", "customers id", (215, 216, 216)),
    (3367, "TABLE DATA", "fleet", "vehicle_makes", (220,)),
    (3363, "TABLE DATA", "public", "customers", (216,)),
    (3365, "TABLE DATA", "public", "purchase", (218,)),
    (3376, "SEQUENCE SET", "fleet", "vehicle_makes_id_seq", (219,)),
    (3377, "SEQUENCE SET", "public", "customers_id_seq", (215,)),
    (3218, "CONSTRAINT", "fleet", "vehicle_makes vehicle_makes_pkey", (220,)),
    (3213, "CONSTRAINT", "public", "customers customers_pkey", (216,)),
    (3214, "INDEX", "public", "purchase_created", (218,)),
    (3219, "FK CONSTRAINT", "public", "purchase purchase_customer_id_fkey", (3213, 218, 216)),
)


@pytest.mark.parametrize(
    ("table", "ids"),
    [(("public", "customers"), [216, 215, 3374, 3208, 3363, 3377, 3213]),
     (("public", "purchase"), [218, 3365, 3214, 3219]),
     (("fleet", "vehicle_makes"), [220, 219, 3367, 3376, 3218])],
    ids=["serial-referenced", "with-its-foreign-key", "identity"],
)  # fmt: skip
def test_the_use_list_holds_a_table_and_its_own_objects(table, ids) -> None:
    """A table comes with its data, index, constraints, default and sequence (definition,
    ownership, value); another table's foreign key to it does not."""
    assert [entry.dump_id for entry in table_entries(SHOP_TOC, [table])] == ids


def test_freshness_without_the_server_grades_no_labelled_series(shop) -> None:
    """With no list of databases (server down), health grades what the store holds: the
    database, never its `~partial` series as if it were a database of its own."""
    host = load_inventory(str(shop["inventory"])).hosts["prod1"]
    ages = backup_freshness(host, datetime.now(UTC))
    assert [age.database for age in ages] == [DATABASE]
