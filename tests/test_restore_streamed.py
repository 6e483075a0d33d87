"""Drills that restore while the backup is still arriving (backups/postgres/streamed_restore).

Real clusters, a real store, real pg_restore runs on a target reached over sshd (a drill
streams when its bytes cross a network; from a local directory to a local target it fetches
first). The lane threshold is lowered so that these small tables stream as a large one
would; what is checked is what a user relies on: the scratch database equals production (rows, keys,
indexes, a materialized view), a damaged or unloadable backup fails naming why and leaves no
database and no file behind, and the counts come from the restore itself.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from backups.archive.toc import parse_toc
from backups.postgres import restore_units
from tests.backup_helpers import table_digests
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "streamshop"
SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id bigint REFERENCES customers,
                     total numeric(10,2));
CREATE TABLE events (id bigint PRIMARY KEY, order_id int REFERENCES orders, payload text);
CREATE INDEX events_order_id ON events (order_id);
COMMENT ON TABLE events IS 'what happened';
INSERT INTO customers (email) SELECT 'c' || i || '@example.com' FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, total) SELECT 1 + i % 2000, i / 7.0
    FROM generate_series(1, 5000) i;
INSERT INTO events SELECT i, 1 + i % 5000, repeat(md5(i::text), 3)
    FROM generate_series(1, 30000) i;
CREATE MATERIALIZED VIEW daily AS SELECT order_id, count(*) AS n FROM events GROUP BY 1;
CREATE INDEX daily_order ON daily (order_id);
"""


@pytest.fixture(scope="module")
def streamshop(prod_cluster):
    prod_cluster.create_database(DATABASE)
    prod_cluster.execute(SCHEMA, dbname=DATABASE)
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


@pytest.fixture
def every_table_streams(monkeypatch) -> None:
    """Stream any table with data, as the largest of a real database would be."""
    monkeypatch.setattr(restore_units, "LANE_MIN_BYTES", 1)


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


@pytest.fixture
def restore_tmp() -> Iterator[Path]:
    """The target's restore directory, outside pytest's private tree so that the SSH
    target's user can write there too."""
    path = Path(tempfile.mkdtemp(prefix="maint-drill-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def inventory(
    tmp_path: Path, prod, staging, restore_tmp: Path, *, target_conn=None, all_vars=None
) -> Path:
    """prod1 backs up to a local store and drills on staging1 into RESTORE_TMP."""
    hosts = {
        "prod1": {
            "ansible_connection": "local",
            "postgres": {"dsn": prod.dsn(), "databases": [DATABASE]},
            "backup": {"store": str(tmp_path / "store")},
            "restore_target": "staging1",
        },
        "staging1": {
            **(target_conn or {"ansible_connection": "local"}),
            "postgres": {"dsn": staging.dsn()},
            "restore": {"tmp_dir": str(restore_tmp)},
        },
    }
    return write_inventory(tmp_path / "inv.yaml", hosts, all_vars=all_vars)


def ssh_inventory(tmp_path: Path, prod, staging, restore_dir: Path, fleet) -> Path:
    """The same, with staging1 reached over SSH (a fleet host, its user `fleet`)."""
    return inventory(
        tmp_path,
        prod,
        staging,
        restore_dir,
        target_conn=fleet.hosts[2].inventory_vars(),
        all_vars=fleet_vars(fleet),
    )


def backed_up(path: Path) -> str:
    code, report, stderr = maint("backup.db", "-i", str(path), "--limit", "prod1")
    assert code == 0, stderr
    return report["results"][0]["details"]["databases"][0]["key"]


def drill(path: Path, *extra: str) -> tuple[int, dict]:
    code, report, stderr = maint("restore.verify", "-i", str(path), "--limit", "prod1", *extra)
    assert report, stderr
    return code, report["results"][0]


def scratch_databases(cluster) -> list[str]:
    rows = cluster.execute("SELECT datname FROM pg_database WHERE datname LIKE 'maint_verify_%'")
    return [row[0] for row in rows]


def schema_facts(cluster, database: str) -> dict[str, object]:
    """Constraints (validated or not), indexes, the view's rows and the table comment."""
    with cluster.connect(database) as connection:
        return {
            "constraints": connection.execute(
                "SELECT conname, contype, convalidated FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace ORDER BY 1"
            ).fetchall(),
            "indexes": connection.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
            ).fetchall(),
            "daily": connection.execute("SELECT count(*), sum(n) FROM daily").fetchone(),
            "comment": connection.execute(
                "SELECT obj_description('events'::regclass, 'pg_class')"
            ).fetchone(),
            "sequence": connection.execute("SELECT last_value FROM orders_id_seq").fetchone(),
        }


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_streamed_drill_restores_production_exactly(
    prod_cluster, staging_cluster, streamshop, ssh_fleet, tmp_path, restore_tmp,
    every_table_streams, jobs,
):  # fmt: skip
    """With 2 jobs events streams; with 3, orders too, and the foreign key between them
    waits for both. Either way the kept scratch database equals production."""
    path = ssh_inventory(tmp_path, prod_cluster, staging_cluster, restore_tmp, ssh_fleet)
    backed_up(path)
    code, result = drill(path, "--keep", "--jobs", jobs)
    assert code == 0, result
    [record] = result["details"]["drills"]
    assert record["ok"] and record["kept"]
    steps = record["steps"]
    # download, scratch database and restore overlap; the restore time is their whole
    assert record["restore_time_s"] == steps["fetch_and_restore_s"]
    assert steps["fetch_and_restore_s"] >= max(steps["download_s"], steps["restore_s"])
    assert {c["table"]: c["counted_by"] for c in record["counts"]} == {
        "public.customers": "restore",
        "public.orders": "restore",
        "public.events": "restore",
    }
    scratch = record["scratch_database"]
    try:
        assert table_digests(staging_cluster, scratch) == table_digests(prod_cluster, DATABASE)
        assert schema_facts(staging_cluster, scratch) == schema_facts(prod_cluster, DATABASE)
    finally:
        staging_cluster.drop_database(scratch)
    assert list(restore_tmp.iterdir()) == []


def test_from_a_local_directory_to_a_local_target_the_drill_fetches_first(
    prod_cluster, staging_cluster, streamshop, tmp_path, restore_tmp, every_table_streams
):
    """No network between store, control machine and target: the download is this
    machine's CPU decompressing, which the restore needs too, so nothing overlaps."""
    path = inventory(tmp_path, prod_cluster, staging_cluster, restore_tmp)
    backed_up(path)
    assert_fetched_then_restored(path, restore_tmp)


def assert_fetched_then_restored(path: Path, restore_tmp: Path) -> None:
    """The drill passes, its restore time is pg_restore's alone (nothing overlapped), the
    counts still come from the restore, and no file is left."""
    code, result = drill(path)
    assert code == 0, result
    [record] = result["details"]["drills"]
    assert "fetch_and_restore_s" not in record["steps"]
    assert record["restore_time_s"] == record["steps"]["restore_s"]
    assert {c["counted_by"] for c in record["counts"]} == {"restore"}
    assert list(restore_tmp.iterdir()) == []


def rewrite_backup(store: Path, key: str, change) -> None:
    """Replace KEY's dump by CHANGE(dump bytes), recompressed, with a manifest that matches:
    a backup whose checksum holds but whose content pg_restore refuses."""
    data_path = store / key
    dump = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data_path.read_bytes())).read()
    data = zstandard.ZstdCompressor().compress(change(dump))
    data_path.write_bytes(data)
    manifest_path = store / (key + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["size"] = len(data)
    manifest["sha256"] = (
        subprocess.run(["sha256sum"], input=data, capture_output=True, check=True)
        .stdout.split()[0]
        .decode()
    )
    manifest_path.write_text(json.dumps(manifest))


def break_events_data(dump: bytes) -> bytes:
    """Turn the id of events row 12345 into text (same length): its COPY fails there."""
    start = dump.index(b"12345\t2346\t", parse_toc(dump).end)
    return dump[:start] + b"x" + dump[start + 1 :]


def test_a_lane_that_fails_fails_the_drill_naming_its_table(
    prod_cluster, staging_cluster, streamshop, ssh_fleet, tmp_path, restore_tmp, every_table_streams
):
    path = ssh_inventory(tmp_path, prod_cluster, staging_cluster, restore_tmp, ssh_fleet)
    key = backed_up(path)
    rewrite_backup(tmp_path / "store", key, break_events_data)
    code, result = drill(path)
    assert code == 1
    assert "pg_restore (data of public.events) exited with status 1" in result["error"]
    assert 'invalid input syntax for type bigint: "x2345"' in result["error"]
    assert scratch_databases(staging_cluster) == []
    assert list(restore_tmp.iterdir()) == []


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_backup_stops_the_streamed_restore_and_names_the_mismatch(
    prod_cluster,
    staging_cluster,
    streamshop,
    ssh_fleet,
    tmp_path,
    restore_tmp,
    every_table_streams,
    damage,
):
    """The checksum is known only when the download ends, after the restore began: the drill
    reports the mismatch (not whatever pg_restore made of the bytes) and leaves nothing."""
    path = ssh_inventory(tmp_path, prod_cluster, staging_cluster, restore_tmp, ssh_fleet)
    key = backed_up(path)
    data_path = tmp_path / "store" / key
    content = bytearray(data_path.read_bytes())
    if damage == "flip":
        content[len(content) * 3 // 4] ^= 0x01
    else:
        del content[len(content) * 3 // 4 :]
    data_path.write_bytes(bytes(content))
    code, result = drill(path)
    assert code == 1
    expected = "sha256 does not match" if damage == "flip" else "does not match the manifest"
    assert expected in result["error"] and key in result["error"]
    assert "pg_restore" not in result["error"]
    assert scratch_databases(staging_cluster) == []
    assert list(restore_tmp.iterdir()) == []


def test_backup_without_recorded_offsets_is_fetched_then_restored(
    prod_cluster, staging_cluster, streamshop, ssh_fleet, tmp_path, restore_tmp
):
    """Backups made before data offsets were recorded: the whole file first, as before,
    even where the bytes cross a network."""
    path = ssh_inventory(tmp_path, prod_cluster, staging_cluster, restore_tmp, ssh_fleet)
    key = backed_up(path)
    manifest_path = tmp_path / "store" / (key + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["data_offsets"] = None
    manifest_path.write_text(json.dumps(manifest))
    assert_fetched_then_restored(path, restore_tmp)


def test_unwritable_restore_directory_fails_promptly_over_ssh(
    prod_cluster, staging_cluster, streamshop, ssh_fleet, tmp_path, every_table_streams
):
    """The SSH target's user cannot write the restore directory: the download cannot start,
    and the drill says so at once instead of waiting for bytes that will never come."""
    private = tmp_path / "private"  # under pytest's root-only tree: the fleet user is shut out
    private.mkdir()
    path = ssh_inventory(tmp_path, prod_cluster, staging_cluster, private, ssh_fleet)
    backed_up(path)
    started = time.monotonic()
    code, result = drill(path)
    assert code == 1
    assert "Permission denied" in result["error"] and str(private) in result["error"]
    assert time.monotonic() - started < 8  # well under the wait loops' 10 s give-up
    assert scratch_databases(staging_cluster) == []
