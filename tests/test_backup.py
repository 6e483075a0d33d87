"""backup.db end to end: real PostgreSQL, real pg_dump over local and SSH runners, real stores."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from backups.archive.layout import parse_key
from backups.archive.manifest import Manifest
from backups.stores import open_store
from tests.backup_helpers import (
    EVIL_TABLE,
    ODD_TABLE,
    make_sample_database,
    restore_into,
    stored_keys,
    table_digests,
)
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "shop"


@pytest.fixture(scope="module")
def shop(prod_cluster):
    make_sample_database(prod_cluster, DATABASE)
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def maint(*args: str, check_json: bool = True) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def db_host(cluster, store: str, connection: dict | None = None, **backup) -> dict:
    return {
        **(connection or {"ansible_connection": "local"}),
        "postgres": {"dsn": cluster.dsn(), "databases": [DATABASE]},
        "backup": {"store": store, **backup},
    }


def only_backup(report: dict) -> dict:
    [database] = report["results"][0]["details"]["databases"]
    return database


def test_backup_round_trips_through_pg_restore(prod_cluster, staging_cluster, shop, tmp_path):
    """A local-store backup restores with pg_restore into identical tables, odd names included."""
    store_dir = tmp_path / "store"
    inventory = write_inventory(
        tmp_path / "inv.yaml", {"db1": db_host(prod_cluster, str(store_dir))}
    )
    code, report, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 0, stderr
    outcome = only_backup(report)
    key = outcome["key"]
    parsed = parse_key(key)
    assert (parsed.host, parsed.database, parsed.codec) == ("db1", DATABASE, "zst")
    store = open_store(str(store_dir))
    manifest = Manifest.from_json(store.get_bytes(key + ".manifest.json"), key)
    assert manifest.size == outcome["size"] == (store_dir / key).stat().st_size
    assert manifest.tables[f"sales.{ODD_TABLE}"].rows == 10000
    assert manifest.tables[f"public.{EVIL_TABLE}"].rows == 1
    assert manifest.pg_dump_version.startswith("15")
    restore_into(store, key, staging_cluster, "shop_restored")
    try:
        assert table_digests(staging_cluster, "shop_restored") == table_digests(
            prod_cluster, DATABASE
        )
    finally:
        staging_cluster.drop_database("shop_restored")
    assert (store_dir / key).stat().st_mode & 0o777 == 0o600
    assert (store_dir / "db1").stat().st_mode & 0o777 == 0o700
    assert prod_cluster.password not in stderr + json.dumps(report)


def test_manifest_counts_match_dump_while_a_writer_inserts(prod_cluster, staging_cluster, tmp_path):
    """Rows inserted during the dump are either in both the dump and the counts, or in neither."""
    name = "busy"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE events (id bigserial PRIMARY KEY, payload text)", dbname=name
    )
    prod_cluster.execute(
        "INSERT INTO events (payload)"
        " SELECT repeat(md5(i::text), 20) FROM generate_series(1, 100000) i",
        dbname=name,
    )
    stop = threading.Event()

    def write() -> None:
        with prod_cluster.connect(name) as connection:
            while not stop.is_set():
                connection.execute(
                    "INSERT INTO events (payload) SELECT 'late' FROM generate_series(1, 50)"
                )

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        time.sleep(0.3)
        host = db_host(prod_cluster, str(tmp_path / "store"))
        host["postgres"]["databases"] = [name]
        inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
        code, report, stderr = maint("backup.db", "-i", str(inventory))
    finally:
        stop.set()
        writer.join(10)
    assert code == 0, stderr
    key = only_backup(report)["key"]
    store = open_store(str(tmp_path / "store"))
    manifest = Manifest.from_json(store.get_bytes(key + ".manifest.json"), key)
    live = prod_cluster.execute("SELECT count(*) FROM events", dbname=name)[0][0]
    assert manifest.tables["public.events"].rows < live, "the writer kept inserting after the dump"
    restore_into(store, key, staging_cluster, "busy_restored")
    try:
        restored = staging_cluster.execute("SELECT count(*) FROM events", dbname="busy_restored")[
            0
        ][0]
        assert restored == manifest.tables["public.events"].rows
        assert manifest.tables["public.events"].exact
    finally:
        staging_cluster.drop_database("busy_restored")
        prod_cluster.drop_database(name)


def test_backup_over_ssh_to_s3_and_gcs(
    prod_cluster, shop, ssh_fleet, s3_server, gcs_server, tmp_path, monkeypatch
):
    """pg_dump runs on SSH hosts; their backups land complete in S3 and GCS."""
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket="backups")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket("gbackups")
    node1, node2 = ssh_fleet.hosts[:2]
    hosts = {
        "node01": db_host(
            prod_cluster, "s3://backups/nightly", node1.inventory_vars(), endpoint_url=s3_server.url
        ),
        "node02": db_host(prod_cluster, "gs://gbackups/nightly", node2.inventory_vars()),
    }
    inventory = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    code, report, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 0, stderr
    for result in report["results"]:
        assert result["status"] == "ok", result
    code, listing, stderr = maint("backup.list", "-i", str(inventory))
    assert code == 0, stderr
    for result in listing["results"]:
        [row] = result["details"]["rows"]
        assert row["database"] == DATABASE and row["codec"] == "zst"
    s3_keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=s3_server.url).list_objects_v2(Bucket="backups")[
            "Contents"
        ]
    ]
    assert len(s3_keys) == 2 and all(k.startswith("nightly/node01/shop/") for k in s3_keys)


def test_one_host_down_leaves_the_others_backups_complete(prod_cluster, shop, ssh_fleet, tmp_path):
    store = str(tmp_path / "store")
    hosts = {
        "node01": db_host(prod_cluster, store, ssh_fleet.hosts[0].inventory_vars()),
        "down01": db_host(
            prod_cluster,
            store,
            {**ssh_fleet.hosts[1].inventory_vars(), "ansible_host": "127.0.0.250"},
        ),
        "node03": db_host(prod_cluster, store, ssh_fleet.hosts[2].inventory_vars()),
    }
    inventory = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    code, report, _ = maint("backup.db", "-i", str(inventory))
    assert code == 1
    statuses = {r["host"]: r["status"] for r in report["results"]}
    assert statuses == {"node01": "ok", "down01": "unreachable", "node03": "ok"}
    files = stored_keys(Path(store))
    assert len([f for f in files if f.endswith(".manifest.json")]) == 2
    assert not any(f.startswith("down01") for f in files)


def test_killed_pg_dump_leaves_no_manifest_and_no_partial_object(prod_cluster, tmp_path):
    """pg_dump killed mid-stream fails the host with its stderr, and the store stays empty."""
    name = "big"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE blobs AS SELECT i, md5(i::text) || md5((i*7)::text) || md5((i*13)::text) AS v"
        " FROM generate_series(1, 1500000) i",
        dbname=name,
    )
    store = tmp_path / "store"
    host = db_host(prod_cluster, str(store))
    host["postgres"]["databases"] = [name]
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    process = subprocess.Popen(
        ["maint", "backup.db", "-i", str(inventory), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [p for p in store.rglob(".*partial*") if p.stat().st_size > 1 << 20]
            if partial:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the dump never started streaming")
        subprocess.run(["pkill", "-KILL", "-f", "--", "--snapshot="], check=True)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        prod_cluster.drop_database(name)
    assert process.returncode == 1, stderr
    result = json.loads(stdout)["results"][0]
    assert result["status"] == "failed"
    assert "pg_dump exited with status" in result["error"]
    assert stored_keys(store) == []


def test_empty_policy_and_bad_store_are_configuration_errors(prod_cluster, tmp_path):
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": db_host(prod_cluster, "ftp://x/y")})
    code, _, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 2 and "ftp" in stderr and "Traceback" not in stderr
    inventory = write_inventory(
        tmp_path / "inv2.yaml", {"db1": db_host(prod_cluster, str(tmp_path))}
    )
    code, _, stderr = maint("backup.prune", "-i", str(inventory))
    assert code != 0 and "empty" in stderr.lower() and "Traceback" not in stderr


def test_compression_level_trades_cpu_for_size(prod_cluster, staging_cluster, tmp_path):
    """backup.level: a higher zstd level stores fewer bytes of the same dump, which restores."""
    name = "levels"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE t AS SELECT i, repeat(md5((i % 5000)::text), 3) AS m"
        " FROM generate_series(1, 100000) i",
        dbname=name,
    )
    sizes, keys = {}, {}
    try:
        for level in (1, 19):
            host = db_host(prod_cluster, str(tmp_path / f"level{level}"), level=level)
            host["postgres"]["databases"] = [name]
            inventory = write_inventory(tmp_path / f"inv{level}.yaml", {"db1": host})
            code, report, stderr = maint("backup.db", "-i", str(inventory))
            assert code == 0, stderr
            sizes[level], keys[level] = only_backup(report)["size"], only_backup(report)["key"]
        assert sizes[19] < 0.8 * sizes[1]
        restore_into(open_store(str(tmp_path / "level19")), keys[19], staging_cluster, name)
        try:
            assert table_digests(staging_cluster, name) == table_digests(prod_cluster, name)
        finally:
            staging_cluster.drop_database(name)
    finally:
        prod_cluster.drop_database(name)


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        ({"level": 25}, "backup.level: expected a zst level from 1 to 19, got 25"),
        ({"codec": "gz", "level": "high"}, "backup.level: expected a number, got 'high'"),
        ({"codec": "none", "level": 3}, "backup.level: codec 'none' takes no level"),
    ],
)
def test_bad_compression_level_is_a_configuration_error(prod_cluster, tmp_path, backup, message):
    host = db_host(prod_cluster, str(tmp_path / "store"), **backup)
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, _, stderr = maint("backup.db", "-i", str(inventory))
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert not (tmp_path / "store").exists()


def test_much_smaller_dump_is_flagged(prod_cluster, tmp_path):
    name = "shrinking"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE t AS SELECT i, md5(i::text) m FROM generate_series(1, 50000) i", dbname=name
    )
    host = db_host(prod_cluster, str(tmp_path / "store"))
    host["postgres"]["databases"] = [name]
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    try:
        assert maint("backup.db", "-i", str(inventory))[0] == 0
        prod_cluster.execute("TRUNCATE t", dbname=name)
        code, report, _ = maint("backup.db", "-i", str(inventory))
    finally:
        prod_cluster.drop_database(name)
    assert code == 0
    assert "much smaller than the previous backup" in only_backup(report)["flags"][0]
    assert "much smaller" in report["results"][0]["summary"]


def test_old_pg_dump_is_refused_naming_the_version_needed(prod_cluster, shop, tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "pg_dump").write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 13.4'\n")
    (fake_bin / "pg_dump").chmod(0o755)
    host = db_host(prod_cluster, str(tmp_path / "store"))
    host["postgres"]["bin_dir"] = str(fake_bin)
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, report, _ = maint("backup.db", "-i", str(inventory))
    assert code == 1
    error = report["results"][0]["error"]
    assert "pg_dump 15 or newer is needed" in error and "13.4" in error
    assert stored_keys(tmp_path / "store") == []


def test_the_versions_own_pg_dump_is_chosen_over_the_wrapper_on_path():
    """Debian's /usr/bin/pg_dump (pg_wrapper) also reports 15; the version's own binary wins."""
    from backups.postgres.clients import find_client
    from maintenance.inventory import Host
    from maintenance.runners import LocalRunner

    host = Host("db1", (), {"ansible_connection": "local"})
    with LocalRunner(host) as runner:
        tool = find_client(host, runner, "pg_dump", 15)
    assert tool.path == "/usr/lib/postgresql/15/bin/pg_dump" and tool.major == 15


def test_globals_are_stored_beside_the_dumps(prod_cluster, tmp_path):
    prod_cluster.execute("DROP ROLE IF EXISTS reporting_ro")
    prod_cluster.execute("CREATE ROLE reporting_ro LOGIN")
    inventory = write_inventory(
        tmp_path / "inv.yaml", {"db1": db_host(prod_cluster, str(tmp_path / "s"))}
    )
    code, report, stderr = maint("backup.globals", "-i", str(inventory))
    assert code == 0, stderr
    key = report["results"][0]["details"]["key"]
    assert key.startswith("db1/_globals/") and key.endswith(".sql.zst")
    store = open_store(str(tmp_path / "s"))
    from backups.archive.codecs import decompressing_reader

    with store.open_read(key) as raw:
        text = decompressing_reader("zst", raw).read().decode()
    assert "CREATE ROLE reporting_ro" in text
    manifest = Manifest.from_json(store.get_bytes(key + ".manifest.json"), key)
    assert manifest.kind == "globals" and manifest.data_offsets is None  # plain SQL: no TOC


@pytest.fixture(scope="module")
def medium(prod_cluster):
    """A database whose compressed dump spans several 5 MiB multipart parts."""
    name = "medium"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE readings AS SELECT i, md5(i::text) || md5((i * 3)::text) AS a,"
        " md5((i * 7)::text) AS b FROM generate_series(1, 250000) i",
        dbname=name,
    )
    yield name
    prod_cluster.drop_database(name)


def s3_inventory(tmp_path, prod_cluster, proxy_url: str, database: str) -> Path:
    host = db_host(
        prod_cluster, "s3://faulty/pg", endpoint_url=proxy_url, part_size="5MiB", max_attempts=3
    )
    host["postgres"]["databases"] = [database]
    return write_inventory(tmp_path / "inv.yaml", {"db1": host})


@pytest.mark.usefixtures("low_backoff_draws")  # counts retries, never times them
def test_store_500s_then_recovering_still_gives_a_complete_backup(
    prod_cluster, staging_cluster, medium, s3_server, tmp_path
):
    from tests.harness.faults import FaultProxy, s3_upload_part

    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket="faulty")
    with FaultProxy(s3_server.url) as proxy:
        inventory = s3_inventory(tmp_path, prod_cluster, proxy.url, medium)
        proxy.fail_next(2, status=500, match=s3_upload_part)
        code, report, stderr = maint("backup.db", "-i", str(inventory))
        assert code == 0, stderr
        assert proxy.faults_served == 2
        key = only_backup(report)["key"]
        store = open_store("s3://faulty/pg", {"endpoint_url": proxy.url})
        restore_into(store, key, staging_cluster, "medium_restored")
    try:
        assert table_digests(staging_cluster, "medium_restored") == table_digests(
            prod_cluster, medium
        )
    finally:
        staging_cluster.drop_database("medium_restored")


@pytest.mark.usefixtures("low_backoff_draws")
def test_store_failing_for_good_leaves_no_object_no_upload_no_manifest(
    prod_cluster, medium, s3_server, tmp_path
):
    from tests.harness.faults import FaultProxy, s3_upload_part

    client = boto3.client("s3", endpoint_url=s3_server.url)
    client.create_bucket(Bucket="faulty")
    with FaultProxy(s3_server.url) as proxy:
        inventory = s3_inventory(tmp_path, prod_cluster, proxy.url, medium)
        before = {o["Key"] for o in client.list_objects_v2(Bucket="faulty").get("Contents", [])}
        proxy.fail_always(match=s3_upload_part, status=503)
        code, report, _ = maint("backup.db", "-i", str(inventory))
    assert code == 1
    assert report["results"][0]["status"] == "failed"
    after = {o["Key"] for o in client.list_objects_v2(Bucket="faulty").get("Contents", [])}
    assert after == before, "a partial object or a manifest was left behind"
    assert client.list_multipart_uploads(Bucket="faulty").get("Uploads", []) == []


def test_one_gigabyte_database_backs_up_in_bounded_memory(prod_cluster, tmp_path):
    """A 1 GB database backs up with the maint process's peak memory under 150 MB."""
    name = "gigabyte"
    prod_cluster.create_database(name)
    try:
        prod_cluster.execute(
            "CREATE UNLOGGED TABLE big AS SELECT i, repeat(md5(i::text), 4) AS payload"
            " FROM generate_series(1, 6500000) i",
            dbname=name,
        )
        size = prod_cluster.execute("SELECT pg_database_size(%s)", (name,))[0][0]
        assert size > 1_000_000_000
        host = db_host(prod_cluster, str(tmp_path / "store"))
        host["postgres"]["databases"] = [name]
        inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
        probe = (
            "import resource, subprocess, sys;"
            "done = subprocess.run(sys.argv[1:], capture_output=True);"
            "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        done = subprocess.run(
            [sys.executable, "-c", probe, "maint", "backup.db", "-i", str(inventory)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        code, peak_kib = map(int, done.stdout.split())
        assert code == 0, done.stderr
        assert peak_kib < 150 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    finally:
        prod_cluster.drop_database(name)
