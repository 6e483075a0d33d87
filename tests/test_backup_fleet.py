"""A seed-like host end to end: a PostgreSQL database, a Redis cache and a SQLite file, kept in
two stores (a directory and S3), backed up, listed, drilled and pruned with one command each.

What an operator checks after each command: every database and source has a complete copy in
every store, the listing shows each of them once per store with its kind, every drill passes,
and pruning leaves each one's newest backup in each store.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from backups.stores import open_store
from tests.backup_helpers import make_sample_database
from tests.harness import RedisServer, start_redis
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

pytestmark = pytest.mark.usefixtures("aws_env")

DATABASE = "fleetshop"
PASSWORD_ENV = "TEST_FLEET_CACHE_PASSWORD"
UNITS = {DATABASE: "postgres", "cache": "redis", "app": "sqlite"}


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def seeded(prod_cluster, redis_server, monkeypatch) -> Iterator[Path]:
    """The three kinds of data, with rows and keys in them; the SQLite file's directory."""
    make_sample_database(prod_cluster, DATABASE, rows=300)
    client = redis_server.client()
    client.flushall()
    client.mset({f"session:{i}": f"user{i}" for i in range(500)})
    monkeypatch.setenv(PASSWORD_ENV, redis_server.password)
    top = Path(tempfile.mkdtemp(prefix="maint-fleet-", dir="/var/tmp"))
    with sqlite3.connect(top / "app.db") as connection:
        connection.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, status TEXT)")
        connection.executemany(
            "INSERT INTO jobs (status) VALUES (?)", [("done",)] * 200 + [("processing",)] * 7
        )
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)
        prod_cluster.drop_database(DATABASE)


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def manifests_per_unit(url: str, endpoint: str) -> dict[str, int]:
    store = open_store(url, {"endpoint_url": endpoint} if url.startswith("s3://") else {})
    found: dict[str, int] = {}
    for info in store.list("app1/"):
        if info.key.endswith(".manifest.json"):
            unit = info.key.split("/")[1]
            found[unit] = found.get(unit, 0) + 1
    return found


def test_two_stores_three_kinds_backed_up_listed_drilled_and_pruned(
    tmp_path, prod_cluster, staging_cluster, redis_server, s3_server, seeded
):
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket="fleet")
    stores = [str(tmp_path / "store"), "s3://fleet/backups"]
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "app1": {
                "ansible_connection": "local",
                "postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]},
                "backup": {
                    "store": stores,
                    "endpoint_url": s3_server.url,
                    "retention": {"keep_last": 1},
                    "sources": [
                        {
                            "name": "cache",
                            "redis": redis_server.url(),
                            "password_env": PASSWORD_ENV,
                        },
                        {"name": "app", "sqlite": str(seeded / "app.db")},
                    ],
                },
                "restore_target": "drills",
            },
            "drills": {
                "ansible_connection": "local",
                "postgres": {"dsn": staging_cluster.dsn()},
            },
        },
    )

    for _ in range(2):  # two runs, so that pruning has something to remove
        code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "app1")
        assert code == 0, stderr
        units = report["results"][0]["details"]["databases"]
        assert sorted(unit["database"] for unit in units) == sorted(UNITS)
    for url in stores:
        assert manifests_per_unit(url, s3_server.url) == dict.fromkeys(UNITS, 2), url

    code, listing, stderr = maint("backup.list", "-i", str(inventory), "--limit", "app1")
    assert code == 0, stderr
    rows = listing["results"][0]["details"]["rows"]
    assert {(row["database"], row["kind"]) for row in rows} == set(UNITS.items())
    assert len(rows) == len(UNITS) * 2 * len(stores)  # two backups of each, in each store

    code, verified, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "app1")
    assert code == 0, stderr + json.dumps(verified)
    drills = verified["results"][0]["details"]["drills"]
    assert {drill["database"]: drill["ok"] for drill in drills} == dict.fromkeys(UNITS, True)

    code, _, stderr = maint("backup.prune", "-i", str(inventory), "--limit", "app1")
    assert code == 0, stderr
    for url in stores:
        assert manifests_per_unit(url, s3_server.url) == dict.fromkeys(UNITS, 1), url
