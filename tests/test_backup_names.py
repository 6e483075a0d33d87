"""Names a user may legally pick, and flags a user must be able to type (issue 14, item 9).

PostgreSQL accepts a database named '.' or '..', and an inventory a host named so; their
backups must land under encoded key segments (never "here" or "up") and come back whole.
"""

from __future__ import annotations

import json
import subprocess
import uuid

import boto3
import pytest

from backups.archive.layout import database_key, host_prefix, parse_key
from backups.stores import open_store
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


@pytest.fixture
def dot_databases(prod_cluster):
    names = [".", ".."]
    for name in names:
        prod_cluster.create_database(name)
        prod_cluster.execute("CREATE TABLE t AS SELECT generate_series(1, 100) AS i", dbname=name)
    yield names
    for name in names:
        prod_cluster.drop_database(name)


@pytest.fixture
def s3_bucket(s3_server, monkeypatch) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = f"names-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
    return bucket


def test_dot_names_encode_to_safe_segments_and_parse_back() -> None:
    from datetime import UTC, datetime

    key = database_key("..", ".", datetime(2024, 5, 1, tzinfo=UTC), "zst")
    assert key.key == "%2E%2E/%2E/20240501T000000Z.dump.zst"
    assert parse_key(key.key) == key
    assert host_prefix("..", ".") == "%2E%2E/%2E/"
    # Names with dots among other characters keep their old, readable keys.
    assert database_key("db.1", "a..b", key.time, None).key.startswith("db.1/a..b/")


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_databases_and_host_named_dot_and_dotdot_back_up_and_list(
    kind, prod_cluster, dot_databases, tmp_path, request
) -> None:
    if kind == "file":
        store_url, extra = str(tmp_path / "store"), {}
    else:
        store_url = f"s3://{request.getfixturevalue('s3_bucket')}/pg"
        extra = {"endpoint_url": request.getfixturevalue("s3_server").url}
    host = {
        "ansible_connection": "local",
        "postgres": {"dsn": prod_cluster.dsn(), "databases": dot_databases},
        "backup": {"store": store_url, **extra},
    }
    inventory = write_inventory(tmp_path / "inv.yaml", {"..": host})
    code, report, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 0, stderr
    outcomes = report["results"][0]["details"]["databases"]
    assert [o["status"] for o in outcomes] == ["ok", "ok"], outcomes
    keys = [o["key"] for o in outcomes]
    assert all(key.startswith("%2E%2E/%2E") for key in keys), keys
    store = open_store(store_url, extra)
    for key in keys:
        assert store.stat(key) is not None and store.stat(key + ".manifest.json") is not None
    if kind == "file":  # nothing was written outside the store's root
        assert sorted(p.name for p in tmp_path.iterdir()) == ["inv.yaml", "store"]
    code, listing, stderr = maint("backup.list", "-i", str(inventory))
    assert code == 0, stderr
    rows = listing["results"][0]["details"]["rows"]
    assert sorted(row["database"] for row in rows) == [".", ".."]


def test_no_task_offers_a_flag_nobody_can_type() -> None:
    """invoke once made up '-' as a short flag, shown as `--=STRING` (backup.prune)."""
    shown = subprocess.run(
        ["maint", "--help", "backup.prune"], capture_output=True, text=True, check=True
    ).stdout
    assert "--=" not in shown
    assert "--keep-weekly=STRING" in shown
    # The short flags people already use stay what they were.
    for short, long in (("-m", "keep-monthly"), ("-w", "keep-within"), ("-y", "keep-yearly")):
        assert f"{short} STRING, --{long}=STRING" in shown
    listing = subprocess.run(["maint", "--list"], capture_output=True, text=True, check=True)
    # Task lines are indented by two spaces; a wrapped help text is indented further.
    lines = listing.stdout.splitlines()
    tasks = [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]
    assert "db.purge" in tasks
    for task in tasks:  # in this process: an interpreter start-up per task would add ~10 s
        help_text = run_maint_cli(["--help", task])
        assert help_text.returncode == 0 and "--=" not in help_text.stdout, task
