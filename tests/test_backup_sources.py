"""backup.sources of kinds sqlite and command, end to end: real SQLite files written by a live
writer, the real sqlite3 tool as a command source, real runners (local and SSH), a real store.

The writer inserts one row into `orders` and one into `lines` per transaction, so any
consistent snapshot has as many of each: counts that differ would mean a torn copy.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from backups.archive.manifest import Manifest
from backups.stores import open_store
from tests.backup_helpers import make_sample_database, stored_keys
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "srcshop"
# A drill restores into a throwaway file in its private directory; restore.db into --database.
DB = '"${MAINT_TMP_DIR:+$MAINT_TMP_DIR/}$MAINT_TARGET"'
RESTORE_SQL = f"sqlite3 {DB}"
CONSISTENT = (  # a shell test, not SQL built from input
    f'test "$(sqlite3 {DB} '  # noqa: S608
    "'SELECT (SELECT count(*) FROM orders) = (SELECT count(*) FROM lines)')\" = 1"
)


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


class Writer:
    """Inserts an order and its line per transaction until stopped, as an application would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        while not self._stop.is_set():
            connection.execute("BEGIN IMMEDIATE")
            cursor = connection.execute("INSERT INTO orders (note) VALUES ('x')")
            connection.execute("INSERT INTO lines (order_id) VALUES (?)", (cursor.lastrowid,))
            connection.execute("COMMIT")
            self.done += 1
            self._stop.wait(0.002)  # an application's pace: readers get their turn
        connection.close()

    def __enter__(self) -> Writer:
        self._thread.start()
        while self.done < 20:  # writing for real before the backup starts
            self._stop.wait(0.005)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("lines", "orders")
        }


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """A directory the fleet user can read (pytest's tmp tree is closed to it), holding a
    SQLite database of 2 000 orders in rollback-journal mode."""
    top = Path(tempfile.mkdtemp(prefix="maint-sqlite-", dir="/var/tmp"))
    top.chmod(0o755)
    with sqlite3.connect(top / "app.db") as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        connection.execute("CREATE TABLE lines (id INTEGER PRIMARY KEY, order_id INTEGER)")
        connection.execute('CREATE TABLE "odd ""name""" (x)')
        for _ in range(2000):
            order = connection.execute("INSERT INTO orders (note) VALUES ('seed')").lastrowid
            connection.execute("INSERT INTO lines (order_id) VALUES (?)", (order,))
    (top / "app.db").chmod(0o644)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def sources(app_dir: Path) -> list[dict]:
    database = app_dir / "app.db"
    return [
        {"name": "app", "sqlite": str(database)},
        {"name": "appsql", "command": f"sqlite3 -bail -cmd '.timeout 30000' {database} .dump",
         "suffix": "sql", "restore_command": RESTORE_SQL,
         "check_command": CONSISTENT},
    ]  # fmt: skip


def local_host(store: Path, app_dir: Path, **more) -> dict:
    return {
        "ansible_connection": "local",
        "restore_target": "self",
        "backup": {"store": str(store), "sources": sources(app_dir), **more},
    }


def backed_up_locally(
    tmp_path: Path, app_dir: Path
) -> tuple[Path, dict[str, dict], Path, dict[str, dict]]:
    """The sources of APP_DIR backed up by `maint backup.db` on a local host db1 (restored
    onto `self`): the store, the hosts, their inventory and the outcomes by source name."""
    store = tmp_path / "store"
    hosts = {"db1": local_host(store, app_dir), "self": {"ansible_connection": "local"}}
    inventory = write_inventory(tmp_path / "inv.yaml", hosts)
    code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "db1")
    assert code == 0, stderr
    return store, hosts, inventory, by_name(report)


def by_name(report: dict) -> dict[str, dict]:
    return {o["database"]: o for o in report["results"][0]["details"]["databases"]}


def manifest_of(store: Path, key: str) -> Manifest:
    return Manifest.from_json(open_store(str(store)).get_bytes(key + ".manifest.json"), key)


def test_sqlite_and_command_sources_back_up_a_live_database_and_drill(tmp_path, app_dir):
    """While a writer commits (WAL mode), both kinds store a consistent copy; the manifest
    says the kind, the SQLite counts are the snapshot's (orders = lines); drills pass and are
    recorded."""
    store = tmp_path / "store"
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": local_host(store, app_dir), "self": {"ansible_connection": "local"}},
    )
    database = app_dir / "app.db"
    with sqlite3.connect(database) as connection:  # as applications run it; SSH: rollback
        connection.execute("PRAGMA journal_mode=WAL")
    before = counts(database)
    with Writer(database) as writer:
        started = writer.done
        code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "db1")
        assert writer.done > started, "the writer was not writing during the backup"
    after = counts(database)
    assert code == 0, stderr
    outcomes = by_name(report)
    assert {name: o["kind"] for name, o in outcomes.items()} == {
        "app": "sqlite",
        "appsql": "command",
    }
    app = manifest_of(store, outcomes["app"]["key"])
    assert app.source == {"kind": "sqlite", "name": "app"}
    assert app.counts["orders"] == app.counts["lines"], "a torn copy: counts of two moments"
    assert before["orders"] <= app.counts["orders"] <= after["orders"]
    assert app.counts['odd "name"'] == 0
    assert outcomes["app"]["key"].endswith(".sqlite.zst")
    assert manifest_of(store, outcomes["appsql"]["key"]).source == {
        "kind": "command",
        "name": "appsql",
    }
    assert outcomes["appsql"]["key"].endswith(".sql.zst")

    code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "db1")
    assert code == 0, stderr
    drills = {d["database"]: d for d in report["results"][0]["details"]["drills"]}
    assert drills["app"]["ok"] and drills["appsql"]["ok"], drills
    assert {c["name"]: c["restored"] for c in drills["app"]["counts"]} == app.counts
    record = json.loads((store / (outcomes["app"]["key"] + ".verify.json")).read_text())
    assert record["ok"] and record["kind"] == "sqlite"

    code, listing, stderr = maint("backup.list", "-i", str(inventory), "--limit", "db1")
    assert code == 0, stderr
    rows = {row["database"]: row for row in listing["results"][0]["details"]["rows"]}
    assert {name: (row["kind"], row["drill"][:6]) for name, row in rows.items()} == {
        "app": ("sqlite", "passed"), "appsql": ("command", "passed")
    }  # fmt: skip


def test_drills_fail_on_a_corrupted_object_and_on_a_failing_check(tmp_path, app_dir):
    """A flipped byte in either kind's object fails its drill (sha256, before any restore);
    a check_command that fails fails the drill with its status and stderr. Each is recorded."""
    store, hosts, inventory, outcomes = backed_up_locally(tmp_path, app_dir)
    for outcome in outcomes.values():
        damaged = store / outcome["key"]
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2] ^= 0xFF
        damaged.write_bytes(bytes(data))

    code, report, _ = maint("restore.verify", "-i", str(inventory), "--limit", "db1")
    assert code == 1
    drills = {d["database"]: d for d in report["results"][0]["details"]["drills"]}
    for name, outcome in outcomes.items():
        assert not drills[name]["ok"] and "sha256 does not match" in drills[name]["reasons"][0]
        record = json.loads((store / (outcome["key"] + ".verify.json")).read_text())
        assert record["ok"] is False

    hosts["db1"]["backup"]["sources"][1]["check_command"] = "echo 'orders missing' >&2; exit 3"
    inventory = write_inventory(tmp_path / "inv.yaml", hosts)
    code, _, stderr = maint(
        "backup.db", "-i", str(inventory), "--limit", "db1", "--source", "appsql"
    )
    assert code == 0, stderr
    code, report, _ = maint(
        "restore.verify", "-i", str(inventory), "--limit", "db1", "--source", "appsql"
    )
    assert code == 1
    [drill] = report["results"][0]["details"]["drills"]
    assert drill["reasons"] == ["check_command exited with status 3: orders missing"]


def test_a_failing_dump_command_fails_the_backup_and_leaves_nothing(tmp_path, app_dir):
    store = tmp_path / "store"
    broken = {"name": "events", "command": "echo partial; echo 'mongodump: no server' >&2; exit 2"}
    host = local_host(store, app_dir)
    host["backup"]["sources"] = [broken]
    del host["restore_target"]
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, report, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 1, stderr
    [outcome] = report["results"][0]["details"]["databases"]
    assert outcome["status"] == "failed"
    assert outcome["error"] == "sh exited with status 2: mongodump: no server"
    assert not store.exists() or stored_keys(store) == []


@pytest.fixture(scope="module")
def srcshop(prod_cluster):
    make_sample_database(prod_cluster, DATABASE, rows=200)
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


def test_source_selection_retention_across_kinds_and_freshness(
    tmp_path, app_dir, prod_cluster, srcshop
):
    """--source picks sources only (no database unless --database names one); an unknown one
    is refused before any host; prune keeps each kind's own newest; health grades each."""
    store = tmp_path / "store"
    host = local_host(store, app_dir, retention={"keep_last": 1})
    host["postgres"] = {"dsn": prod_cluster.dsn(), "databases": [DATABASE]}
    del host["restore_target"]
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})

    code, _, stderr = maint("backup.db", "-i", str(inventory), "--source", "ap")
    assert code == 2
    assert (
        "--source 'ap' is not one of its backup.sources (app, appsql); did you mean 'app'?"
        in stderr
    )
    assert not store.exists()

    code, report, stderr = maint("backup.db", "-i", str(inventory), "--source", "app")
    assert code == 0, stderr
    assert list(by_name(report)) == ["app"]
    assert report["results"][0]["summary"].startswith("1/1 sources backed up")
    code, report, stderr = maint(
        "backup.db", "-i", str(inventory), "--source", "appsql", "--database", DATABASE
    )
    assert code == 0, stderr
    assert sorted(by_name(report)) == ["appsql", DATABASE]
    code, report, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 0, stderr
    assert sorted(by_name(report)) == ["app", "appsql", DATABASE]
    assert report["results"][0]["summary"].startswith("3/3 databases and sources backed up")
    assert len([k for k in stored_keys(store) if k.endswith(".manifest.json")]) == 6

    code, report, stderr = maint("backup.prune", "-i", str(inventory), "--source", "app")
    assert code == 0, stderr
    names = {o["database"]: len(o["removed"]) for o in report["results"][0]["details"]["databases"]}
    assert names == {"app": 1}
    code, report, stderr = maint("backup.prune", "-i", str(inventory))
    assert code == 0, stderr
    manifests = [k for k in stored_keys(store) if k.endswith(".manifest.json")]
    assert sorted(k.split("/")[1] for k in manifests) == ["app", "appsql", DATABASE]
    code, listing, stderr = maint("backup.list", "-i", str(inventory), "--source", "appsql")
    assert code == 0, stderr
    assert [(r["database"], r["kind"]) for r in listing["results"][0]["details"]["rows"]] == [
        ("appsql", "command")
    ]
    code, listing, stderr = maint("backup.list", "-i", str(inventory))
    kinds = {r["database"]: r["kind"] for r in listing["results"][0]["details"]["rows"]}
    assert kinds == {"app": "sqlite", "appsql": "command", DATABASE: "postgres"}

    code, health, _ = maint("health.check", "-i", str(inventory))
    checks = {c["name"]: c for c in health["results"][0]["details"]["checks"]}
    assert checks["backup app"]["state"] == "OK" and checks["backup appsql"]["state"] == "OK"
    assert checks["drill app"]["state"] == "CRITICAL"  # never drilled
    assert "no passing restore drill found" in checks["drill app"]["message"]


def test_sources_over_ssh_back_up_on_the_host_and_drill_on_another(tmp_path, app_dir, ssh_fleet):
    """On an SSH host the SQLite copy is made there by its python3 and streamed back; the
    drill runs on the restore target, another SSH host."""
    node1, node2 = ssh_fleet.hosts[:2]
    store = tmp_path / "store"
    hosts = {
        "node01": {**node1.inventory_vars(), "restore_target": "node02",
                   "backup": {"store": str(store), "sources": sources(app_dir)}},
        "node02": node2.inventory_vars(),
    }  # fmt: skip
    inventory = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    database = app_dir / "app.db"
    with Writer(database):
        code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "node01")
    assert code == 0, stderr
    outcomes = by_name(report)
    app = manifest_of(store, outcomes["app"]["key"])
    assert app.counts["orders"] == app.counts["lines"] >= 2020
    code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "node01")
    assert code == 0, stderr
    drills = report["results"][0]["details"]["drills"]
    assert [(d["database"], d["ok"], d["target"]) for d in drills] == [
        ("app", True, "node02"), ("appsql", True, "node02")
    ]  # fmt: skip


def test_restore_db_restores_a_source_backup_into_a_file_or_a_command(tmp_path, app_dir):
    """restore.db of a SQLite backup writes the file --database names (an existing one only
    with --force, its stale WAL gone); a command source's goes through its restore_command."""
    store, _, inventory, outcomes = backed_up_locally(tmp_path, app_dir)
    into = app_dir / "restored.db"
    into.write_bytes(b"an older database")
    (app_dir / "restored.db-wal").write_bytes(b"its stale journal")
    restore = ("restore.db", "-i", str(inventory), "--target", "db1", "--yes")

    code, _, stderr = maint(*restore, "--backup", "db1/app/latest", "--database", str(into))
    assert code == 1 and "exists on db1; refusing to overwrite it without --force" in stderr
    code, report, stderr = maint(
        *restore, "--backup", "db1/app/latest", "--database", str(into), "--force"
    )
    assert code == 0, stderr
    assert report["results"][0]["status"] == "changed"
    assert counts(into) == {k: manifest_of(store, outcomes["app"]["key"]).counts[k]
                            for k in ("lines", "orders")}  # fmt: skip
    assert not (app_dir / "restored.db-wal").exists()

    script = app_dir / "from-dump.db"
    code, _, stderr = maint(
        *restore, "--backup", outcomes["appsql"]["key"], "--database", str(script)
    )
    assert code == 0, stderr
    assert counts(script) == counts(into)
