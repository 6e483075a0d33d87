"""backup.db over SSH compresses on the host: only zstd bytes cross the network, the object and
manifest are those of a backup compressed here, and a failing pg_dump still fails the backup."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from backups.archive.codecs import decompressing_reader
from backups.archive.manifest import Manifest
from backups.archive.toc import OffsetObserver
from backups.stores import open_store
from backups.tasks.backup import BackupOptions, backup_host
from maintenance.inventory import load_inventory
from tests.backup_helpers import restore_into, stored_keys, table_digests
from tests.harness.wire import WireCountingRunner
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "wordy"
# The host's PATH without zstd: pg_dump is found by its versioned directory all the same.
PATH_WITHOUT_ZSTD = "/usr/lib/postgresql/15/bin"


@pytest.fixture(scope="module")
def wordy(prod_cluster):
    """A text-heavy database: log-like lines that compress about 5x."""
    prod_cluster.create_database(DATABASE)
    prod_cluster.execute(
        "CREATE TABLE events (id int PRIMARY KEY, at timestamptz, line text)", dbname=DATABASE
    )
    prod_cluster.execute(
        "INSERT INTO events SELECT i, timestamptz '2026-01-01' + i * interval '1 s',"
        " 'GET /shop/item/' || (i % 997) || ' user=' || md5((i % 5000)::text)"
        " || ' status=200 agent=Mozilla/5.0 (X11; Linux x86_64) took ' || (i % 83) || ' ms'"
        " FROM generate_series(1, 60000) i",
        dbname=DATABASE,
    )
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


def ssh_inventory(tmp_path: Path, prod_cluster, staging_cluster, ssh_fleet) -> Path:
    hosts = {
        "prod1": {
            **ssh_fleet.hosts[0].inventory_vars(),
            "postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]},
            "backup": {"store": str(tmp_path / "store")},
            "restore_target": "staging1",
        },
        "staging1": {"ansible_connection": "local", "postgres": {"dsn": staging_cluster.dsn()}},
    }
    return write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))


def back_up(inventory: Path, path: str | None = None) -> tuple[dict, int]:
    """backup.db of prod1 through the counting runner: its outcome and the dump's wire bytes."""
    host = next(host for host in load_inventory(inventory) if host.name == "prod1")
    with WireCountingRunner(host, path) as runner:
        result = backup_host(host, runner, BackupOptions())
    [outcome] = result.details["databases"]
    return outcome, max(runner.received)


def stored(tmp_path: Path, outcome: dict) -> tuple[Manifest, bytes]:
    store = open_store(str(tmp_path / "store"))
    key = outcome["key"]
    manifest = Manifest.from_json(store.get_bytes(key + ".manifest.json"), key)
    with store.open_read(key) as raw:
        dump = decompressing_reader("zst", raw).read()
    return manifest, dump


def test_only_compressed_bytes_cross_and_the_backup_verifies(
    prod_cluster, staging_cluster, wordy, ssh_fleet, tmp_path
):
    inventory = ssh_inventory(tmp_path, prod_cluster, staging_cluster, ssh_fleet)
    outcome, wire = back_up(inventory)
    assert outcome["status"] == "ok", outcome
    manifest, dump = stored(tmp_path, outcome)
    assert wire == manifest.size == outcome["size"]
    assert outcome["raw_size"] == len(dump) > 4 * wire
    observer = OffsetObserver()
    observer.feed(dump)
    assert manifest.offsets() == observer.offsets() and manifest.offsets()
    assert manifest.codec == "zst" and manifest.tables["public.events"].rows == 60000
    code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr + json.dumps(report)
    [drill] = report["results"][0]["details"]["drills"]
    assert drill["ok"] and drill["key"] == outcome["key"]


def test_a_host_without_zstd_sends_the_dump_to_be_compressed_here(
    prod_cluster, staging_cluster, wordy, ssh_fleet, tmp_path
):
    inventory = ssh_inventory(tmp_path, prod_cluster, staging_cluster, ssh_fleet)
    outcome, wire = back_up(inventory, PATH_WITHOUT_ZSTD)
    assert outcome["status"] == "ok", outcome
    manifest, dump = stored(tmp_path, outcome)
    assert wire == outcome["raw_size"] == len(dump) > 4 * manifest.size
    assert manifest.codec == "zst" and manifest.offsets()
    store = open_store(str(tmp_path / "store"))
    restore_into(store, outcome["key"], staging_cluster, "wordy_plain")
    try:
        assert table_digests(staging_cluster, "wordy_plain") == table_digests(
            prod_cluster, DATABASE
        )
    finally:
        staging_cluster.drop_database("wordy_plain")


def test_pg_dump_failing_mid_way_behind_the_pipe_fails_the_backup(
    prod_cluster, staging_cluster, ssh_fleet, tmp_path
):
    """A row whose enum value is gone from the catalog makes pg_dump's COPY fail after the
    archive's header and the first table's data went into zstd."""
    name = "brokenenum"
    prod_cluster.create_database(name)
    try:
        for statement in (
            "CREATE TABLE a_first AS SELECT i, md5(i::text) AS h FROM generate_series(1, 20000) i",
            "CREATE TYPE mood AS ENUM ('calm', 'gone')",
            "CREATE TABLE z_last (m mood)",
            "INSERT INTO z_last VALUES ('calm'), ('gone')",
            "DELETE FROM pg_enum WHERE enumlabel = 'gone'",
        ):
            prod_cluster.execute(statement, dbname=name)
        inventory = ssh_inventory(tmp_path, prod_cluster, staging_cluster, ssh_fleet)
        text = inventory.read_text().replace(f"- {DATABASE}", f"- {name}")
        inventory.write_text(text)
        outcome, wire = back_up(inventory)
    finally:
        prod_cluster.drop_database(name)
    assert outcome["status"] == "failed"
    assert outcome["error"].startswith("pg_dump exited with status 1: ")
    assert "invalid internal value for enum" in outcome["error"]
    assert wire > 0, "zstd sent what pg_dump wrote before failing"
    assert stored_keys(tmp_path / "store") == []


def test_a_zstd_on_path_that_is_not_zstd_fails_the_backup(
    prod_cluster, staging_cluster, wordy, ssh_fleet, tmp_path
):
    """What the host sends must decompress: a `zstd` that passes bytes through stores nothing."""
    impostor = Path(tempfile.mkdtemp(prefix="maint-test-zstd-"))  # readable by the SSH user
    try:
        impostor.chmod(0o755)
        (impostor / "zstd").write_text("#!/bin/sh\nexec /bin/cat\n")
        (impostor / "zstd").chmod(0o755)
        inventory = ssh_inventory(tmp_path, prod_cluster, staging_cluster, ssh_fleet)
        outcome, _ = back_up(inventory, f"{impostor}:{PATH_WITHOUT_ZSTD}")
    finally:
        shutil.rmtree(impostor)
    assert outcome["status"] == "failed"
    assert "the host's zstd sent bytes that do not decompress" in outcome["error"]
    assert stored_keys(tmp_path / "store") == []


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr
