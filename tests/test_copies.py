"""Copies: `backup.store` as a list, one dump written to a local directory, S3 and GCS at once.

Real stores (a directory, moto, the GCS emulator) and a real pg_dump; a store fails mid-stream
through the fault proxy (tests/harness/faults.py): every part or chunk after the preflight is
refused, so the failure comes once megabytes are on their way. The others must complete with
their manifests, the failed one must hold nothing, and the host must say which store failed.
Retention, the listing and health.check's lag warning run over planted backups.
"""

from __future__ import annotations

import hashlib
import json
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from backups.archive.layout import database_key
from backups.stores import ObjectInfo, Store, Upload, open_store
from backups.stores.fanout import FanOut
from backups.stores.local import LocalStore
from tests.backup_helpers import make_sample_database, table_digests
from tests.harness import Service, free_port
from tests.harness.faults import FaultProxy, Match, gcs_upload_chunk, s3_upload_part
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

pytestmark = pytest.mark.usefixtures("aws_env", "low_backoff_draws")

DATABASE = "copies"
# 240 000 rows: ~12 MB of dump, uncompressed (codec none), so parts of 5 MiB go mid-stream.


def bucket_name() -> str:
    return f"copies-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def copies_db(prod_cluster) -> Iterator[str]:
    prod_cluster.create_database(DATABASE)
    prod_cluster.execute(
        "CREATE TABLE t AS SELECT i, md5(i::text) AS h FROM generate_series(1, 240000) i",
        dbname=DATABASE,
    )
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


@dataclass
class Bucket:
    """A bucket as its service sees it, beside the store URL that backs up into it."""

    url: str
    names: list[str]
    unfinished: list[str]


def s3_bucket(endpoint: str) -> tuple[str, Any]:
    client = boto3.client("s3", endpoint_url=endpoint)
    name = bucket_name()
    client.create_bucket(Bucket=name)
    return name, client


def s3_view(client: Any, bucket: str) -> Bucket:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return Bucket(f"s3://{bucket}/pg", [o["Key"] for o in listed], [u["Key"] for u in uploads])


def gcs_bucket(server: Service, monkeypatch: pytest.MonkeyPatch) -> tuple[storage.Client, str]:
    """A new bucket on the emulator, and a client that keeps talking to the emulator itself
    (it reads STORAGE_EMULATOR_HOST once), whatever proxy the stores are sent through."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    client = storage.Client(project="t", credentials=AnonymousCredentials())
    return client, client.create_bucket(bucket_name()).name


def gcs_view(client: storage.Client, bucket: str) -> Bucket:
    return Bucket(f"gs://{bucket}/pg", [b.name for b in client.list_blobs(bucket)], [])


def backup_json(inventory: Path) -> tuple[int, dict[str, Any], str]:
    done = run_maint_cli(["backup.db", "-i", str(inventory), "--json"])
    return done.returncode, json.loads(done.stdout)["results"][0], done.stderr


def sha256_of(store: Store, key: str) -> str:
    digest = hashlib.sha256()
    with store.open_read(key) as reader:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


FAILING: dict[str, Match] = {"s3": s3_upload_part, "gs": gcs_upload_chunk}


@pytest.mark.parametrize("failing", FAILING)
def test_one_dump_reaches_every_store_and_a_store_failing_mid_stream_loses_only_its_copy(
    copies_db, prod_cluster, s3_server: Service, gcs_server: Service, tmp_path: Path,
    monkeypatch, failing: str,
) -> None:  # fmt: skip
    """local + S3 + GCS in one run, FAILING refusing every part: the two others hold the
    same complete backup (object and manifest, sha256 as recorded), the failed store holds
    nothing (no object, no unfinished upload), the host is failed naming that store and its
    error in --json; backup.list lists the backup in both stores and health.check warns that
    the failed store has none."""
    s3_name, s3 = s3_bucket(s3_server.url)
    gcs, gcs_name = gcs_bucket(gcs_server, monkeypatch)
    local = f"file://{tmp_path}/local"
    with FaultProxy(s3_server.url) as s3_proxy, FaultProxy(gcs_server.url) as gcs_proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_proxy.url)
        (s3_proxy if failing == "s3" else gcs_proxy).fail_always(FAILING[failing], status=503)
        backup = {
            "store": [local, f"s3://{s3_name}/pg", f"gs://{gcs_name}/pg"],
            "codec": "none", "part_size": "5MiB", "endpoint_url": s3_proxy.url,
            "max_attempts": 1, "retry_timeout": 1,
        }  # fmt: skip
        host = {"ansible_connection": "local", "backup": backup,
                "postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]}}  # fmt: skip
        inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
        code, result, stderr = backup_json(inventory)
        failing_proxy = s3_proxy if failing == "s3" else gcs_proxy
        assert failing_proxy.faults_served >= 1, "the failing store was never reached"
        failing_proxy.clear()  # the emulators' links name the proxy: keep it, faults off
        stores = {
            local: open_store(local),
            f"s3://{s3_name}/pg": open_store(f"s3://{s3_name}/pg", {"endpoint_url": s3_proxy.url}),
            f"gs://{gcs_name}/pg": open_store(f"gs://{gcs_name}/pg"),
        }
        failed_url = f"s3://{s3_name}/pg" if failing == "s3" else f"gs://{gcs_name}/pg"
        check_outcome(code, result, stderr, stores, failed_url, inventory)
        view = s3_view(s3, s3_name) if failing == "s3" else gcs_view(gcs, gcs_name)
        assert view.names == [] and view.unfinished == [], view


def check_outcome(
    code: int, result: dict[str, Any], stderr: str, stores: dict[str, Store], failed_url: str,
    inventory: Path,
) -> None:  # fmt: skip
    """What a user checks after the run of the test above (see its docstring)."""
    assert code == 1, stderr
    assert result["status"] == "failed"
    [outcome] = result["details"]["databases"]
    by_store = {copy["store"].rstrip("/"): copy for copy in outcome["stores"]}
    assert by_store[failed_url]["status"] == "failed" and by_store[failed_url]["error"]
    good = [url for url in by_store if url != failed_url]
    assert [by_store[url]["status"] for url in good] == ["ok", "ok"]
    assert failed_url in result["error"], result["error"]

    for url in good:
        names = [info.key for info in stores[url].list(f"db1/{DATABASE}/")]
        assert names == [outcome["key"], outcome["key"] + ".manifest.json"], (url, names)
        manifest = json.loads(stores[url].get_bytes(outcome["key"] + ".manifest.json"))
        assert manifest["sha256"] == sha256_of(stores[url], outcome["key"]) == outcome["sha256"]
        assert manifest["size"] == outcome["size"] > 10 * 2**20

    listed = run_maint_cli(["backup.list", "-i", str(inventory), "--json"])
    rows = json.loads(listed.stdout)["results"][0]["details"]["rows"]
    assert sorted((row["store"].rstrip("/"), row["key"]) for row in rows) == sorted(
        (url, outcome["key"]) for url in good
    )
    health = run_maint_cli(["health.check", "-i", str(inventory), "--json"])
    checks = {c["name"]: c for c in json.loads(health.stdout)["results"][0]["details"]["checks"]}
    lag = checks[f"copies {DATABASE}"]
    assert lag["state"] == "WARNING"
    assert f"{failed_url}/ has no complete backup while" in lag["message"], lag


def test_when_every_store_fails_no_copy_is_complete_anywhere(
    copies_db, prod_cluster, s3_server: Service, gcs_server: Service, tmp_path: Path, monkeypatch
) -> None:
    """S3 and GCS both refusing every part: the host fails saying so, and neither bucket holds
    an object or an unfinished upload."""
    s3_name, s3 = s3_bucket(s3_server.url)
    gcs, gcs_name = gcs_bucket(gcs_server, monkeypatch)
    with FaultProxy(s3_server.url) as s3_proxy, FaultProxy(gcs_server.url) as gcs_proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_proxy.url)
        s3_proxy.fail_always(s3_upload_part, status=503)
        gcs_proxy.fail_always(gcs_upload_chunk, status=503)
        backup = {
            "store": [f"s3://{s3_name}/pg", f"gs://{gcs_name}/pg"], "codec": "none",
            "part_size": "5MiB", "endpoint_url": s3_proxy.url, "max_attempts": 1,
            "retry_timeout": 1,
        }  # fmt: skip
        host = {"ansible_connection": "local", "backup": backup,
                "postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]}}  # fmt: skip
        code, result, stderr = backup_json(write_inventory(tmp_path / "inv.yaml", {"db1": host}))
    assert code == 1, stderr
    [outcome] = result["details"]["databases"]
    assert outcome["status"] == "failed" and "every store failed" in outcome["error"]
    assert {copy["status"] for copy in outcome["stores"]} == {"failed"}
    for view in (s3_view(s3, s3_name), gcs_view(gcs, gcs_name)):
        assert view.names == [] and view.unfinished == [], view


def plant(store: Store, times: list[datetime]) -> list[str]:
    """Complete backups of db1/app at TIMES (object and manifest), their keys oldest first."""
    keys = []
    for when in times:
        key = database_key("db1", "app", when, None)
        store.put_bytes(key.key, b"dump " + key.key.encode())
        store.put_bytes(key.manifest_key, b"{}")
        keys.append(key.key)
    return keys


def test_each_store_keeps_its_own_retention_and_a_lagging_store_is_named(
    s3_server: Service, tmp_path: Path
) -> None:
    """The local store has a backup 2 h old that S3 missed: backup.list shows both stores'
    backups with a store column, health.check warns that S3's newest is a day older, and
    backup.prune keeps each store's own two newest (keep_last 2)."""
    s3_name, _ = s3_bucket(s3_server.url)
    local_url, s3_url = f"file://{tmp_path}/local", f"s3://{s3_name}/pg"
    local = open_store(local_url)
    on_s3 = open_store(s3_url, {"endpoint_url": s3_server.url})
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [74, 50, 26, 2]
    in_local = plant(local, [now - timedelta(hours=h) for h in hours])
    in_s3 = plant(on_s3, [now - timedelta(hours=h) for h in hours[:-1]])
    backup = {"store": [local_url, s3_url], "endpoint_url": s3_server.url,
              "retention": {"keep_last": 2}}  # fmt: skip
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local", "backup": backup,
                 "postgres": {"databases": ["app"]}}},
    )  # fmt: skip

    listed = run_maint_cli(["backup.list", "-i", str(inventory), "--json"])
    result = json.loads(listed.stdout)["results"][0]
    assert [(row["store"], row["key"]) for row in result["details"]["rows"]] == [
        (local.url, in_local[3]),
        (local.url, in_local[2]), (on_s3.url, in_s3[2]),
        (local.url, in_local[1]), (on_s3.url, in_s3[1]),
        (local.url, in_local[0]), (on_s3.url, in_s3[0]),
    ]  # fmt: skip
    assert "7 backups of 1 databases in 2 stores" in result["summary"]

    health = run_maint_cli(["health.check", "-i", str(inventory), "--json"])
    checks = {c["name"]: c for c in json.loads(health.stdout)["results"][0]["details"]["checks"]}
    assert checks["copies app"]["state"] == "WARNING"
    assert checks["copies app"]["message"] == (
        f"{on_s3.url} newest backup is 1d0h older than {local.url}'s"
    )
    assert checks["backup app"]["message"].startswith("newest complete backup is 2h"), checks

    pruned = run_maint_cli(["backup.prune", "-i", str(inventory), "--json"])
    assert pruned.returncode == 0, pruned.stderr
    assert [i.key for i in local.list("db1/") if i.key.endswith(".dump")] == in_local[2:]
    assert [i.key for i in on_s3.list("db1/") if i.key.endswith(".dump")] == in_s3[1:]


def test_a_store_failing_its_preflight_is_reported_and_the_others_back_up(
    copies_db, prod_cluster, tmp_path: Path
) -> None:
    """An S3 endpoint that refuses connections: the local copy completes, the host fails
    naming the S3 store, nothing is attempted there."""
    local = f"file://{tmp_path}/local"
    dead = f"http://127.0.0.1:{free_port()}"
    backup = {"store": [local, "s3://nowhere/pg"], "endpoint_url": dead, "max_attempts": 1}
    host = {"ansible_connection": "local", "backup": backup,
            "postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]}}  # fmt: skip
    code, result, stderr = backup_json(write_inventory(tmp_path / "inv.yaml", {"db1": host}))
    assert code == 1, stderr
    [outcome] = result["details"]["databases"]
    assert [(c["store"], c["status"]) for c in outcome["stores"]] == [
        (local, "ok"), ("s3://nowhere/pg/", "failed")
    ]  # fmt: skip
    assert "s3://nowhere/pg/" in result["error"]
    assert [info.key for info in open_store(local).list("db1/")] == [
        outcome["key"], outcome["key"] + ".manifest.json"
    ]  # fmt: skip


class SlowUpload(Upload):
    """A local upload behind a slow link: each write waits a millisecond first."""

    def __init__(self, upload: Upload) -> None:
        super().__init__(upload.key)
        self._upload = upload

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        time.sleep(0.001)
        self._upload.write(data)

    def _commit(self) -> ObjectInfo:
        return self._upload.commit()

    def _abort(self) -> None:
        self._upload.abort()


class SlowStore(LocalStore):
    """A local directory reached slowly (a store that cannot keep up; none runs slow here)."""

    def open_write(self, key: str, *, exclusive: bool = False) -> Upload:
        return SlowUpload(super().open_write(key, exclusive=exclusive))


def test_a_slow_store_sets_the_pace_without_failing_the_others_or_filling_memory(
    tmp_path: Path,
) -> None:
    """64 MiB in fresh 256 KiB chunks (as a compressor hands them over) into two local
    stores and a slow one: every copy completes, and the chunks waiting for the slow store
    stay within its bounded queue (a few MiB), never the stream."""
    fast = [open_store(str(tmp_path / name)) for name in ("a", "b")]
    slow = SlowStore(tmp_path / "slow")
    seed = hashlib.sha256(b"x").digest() * (256 * 1024 // 32)
    tracemalloc.start()
    try:
        with FanOut([*fast, slow], "db1/app/big.dump") as fanout:
            for index in range(256):
                fanout.write(index.to_bytes(4) + seed[4:])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [copy.ok for copy in fanout.copies] == [True, True, True]
    assert [copy.info.size for copy in fanout.copies if copy.info] == [64 * 2**20] * 3
    assert peak < 6 * 2**20, f"peak {peak / 2**20:.1f} MiB"  # LANE_DEPTH chunks: 2 MiB


@pytest.fixture(scope="module")
def shop(prod_cluster) -> Iterator[str]:
    make_sample_database(prod_cluster, "copyshop", rows=500)
    yield "copyshop"
    prod_cluster.drop_database("copyshop")


def test_drills_and_restores_read_the_first_store_that_holds_the_backup(
    shop, prod_cluster, staging_cluster, tmp_path: Path
) -> None:
    """Two stores, the first of which lost the backup: restore.verify drills it from the
    second (and records the drill there), and restore.db restores it from there, named by
    its key or as HOST/DATABASE/latest."""
    first, second = tmp_path / "first", tmp_path / "second"
    hosts = {
        "prod1": {"ansible_connection": "local", "restore_target": "staging1",
                  "postgres": {"dsn": prod_cluster.dsn(), "databases": [shop]},
                  "backup": {"store": [str(first), str(second)]}},
        "staging1": {"ansible_connection": "local", "postgres": {"dsn": staging_cluster.dsn()}},
    }  # fmt: skip
    inventory = str(write_inventory(tmp_path / "inv.yaml", hosts))
    code, result, stderr = backup_json(Path(inventory))
    assert code == 0, stderr
    key = result["details"]["databases"][0]["key"]
    for name in (key + ".manifest.json", key):
        open_store(str(first)).delete(name)

    done = run_maint_cli(["restore.verify", "-i", inventory, "--limit", "prod1", "--json"])
    assert done.returncode == 0, done.stdout + done.stderr
    [drill] = json.loads(done.stdout)["results"][0]["details"]["drills"]
    assert drill["ok"] and drill["key"] == key
    assert (second / (key + ".verify.json")).exists()
    assert not (first / (key + ".verify.json")).exists()

    restore = ["restore.db", "-i", inventory, "--target", "staging1", "--yes", "--json"]
    try:
        for backup, database in ((key, "copyrestored"), (f"prod1/{shop}/latest", "copylatest")):
            done = run_maint_cli([*restore, "--backup", backup, "--database", database])
            assert done.returncode == 0, done.stdout + done.stderr
            assert table_digests(staging_cluster, database) == table_digests(prod_cluster, shop)
        assert f"is {key} in {open_store(str(second)).url}" in done.stdout
    finally:
        staging_cluster.drop_database("copyrestored")
        staging_cluster.drop_database("copylatest")
