"""Two backups of one host and database at once never both succeed for one object (issue 14,
item 1): data and manifest are created exclusively (local link(), S3 If-None-Match: *,
GCS ifGenerationMatch=0), so the second run to commit a key fails and keeps nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from backups.archive.manifest import Manifest
from backups.stores import ObjectExists, open_store
from tests.harness.faults import FaultProxy
from tests.inventories import write_inventory

MIB = 1024 * 1024
KEY = "db1/app/20240501T000000Z.dump"


pytestmark = pytest.mark.usefixtures("aws_env")


def new_bucket(s3_url: str) -> str:
    bucket = f"conc-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_url).create_bucket(Bucket=bucket)
    return bucket


@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize("size", [1000, 12 * MIB])  # one PutObject / a multipart upload
def test_second_exclusive_commit_of_a_key_fails_and_leaves_nothing(
    kind, size, tmp_path, request
) -> None:
    if kind == "file":
        root = tmp_path / "store"
        store = open_store(str(root))
    else:
        url = request.getfixturevalue("s3_server").url
        bucket = new_bucket(url)
        store = open_store(f"s3://{bucket}/pg", {"endpoint_url": url, "part_size": "5MiB"})
    first = store.open_write(KEY, exclusive=True)
    second = store.open_write(KEY, exclusive=True)
    first.write(b"a" * size)
    second.write(b"b" * size)
    first.commit()
    with pytest.raises(ObjectExists, match="already exists"):
        second.commit()
    assert second.closed
    assert store.get_bytes(KEY) == b"a" * size
    assert [info.key for info in store.list("db1/")] == [KEY]
    if kind == "file":  # no hidden partial file of the loser stays behind
        assert [p.name for p in (root / "db1" / "app").iterdir()] == [Path(KEY).name]
    else:
        client = boto3.client("s3", endpoint_url=url)
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    # A plain (non-exclusive) write still replaces, as before.
    store.put_bytes(KEY, b"c")
    assert store.get_bytes(KEY) == b"c"


def test_gcs_exclusive_write_asks_for_generation_zero(gcs_server, monkeypatch) -> None:
    """GCS refuses a create with ifGenerationMatch=0 when the object exists. The emulator
    ignores preconditions, so this checks the request the product sends."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    client = storage.Client(project="t", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"conc-{uuid.uuid4().hex[:12]}")
    with FaultProxy(gcs_server.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        store = open_store(f"gs://{bucket.name}/pg", {"part_size": "256KiB"})
        store.put_bytes(KEY, b"x" * 1000, exclusive=True)
        store.put_bytes("db1/app/plain", b"y")
        seen = proxy.requests_seen
    uploads = [s for s in seen if s.method == "POST" and "uploadType" in s.query]
    assert len(uploads) == 2, seen
    assert uploads[0].query.get("ifGenerationMatch") == ["0"]
    assert "ifGenerationMatch" not in uploads[1].query


def run_two_at_once(inventory: Path) -> list[tuple[int, dict, str]]:
    """Start two `maint backup.db` just after a second begins, so both date their backup
    with the same second (their start-up takes well under a second)."""
    time.sleep(1.05 - time.time() % 1)
    command = ["maint", "backup.db", "-i", str(inventory), "--json"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        outputs.append((process.returncode, json.loads(stdout) if stdout else {}, stderr))
    return outputs


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_two_backup_runs_at_once_never_both_succeed_for_one_key(
    kind, prod_cluster, tmp_path, request
) -> None:
    name = "app"
    prod_cluster.create_database(name)
    prod_cluster.execute(
        "CREATE TABLE t AS SELECT i, md5(i::text) AS v FROM generate_series(1, 200000) i",
        dbname=name,
    )
    if kind == "file":
        store_url, options = str(tmp_path / "store"), {}
    else:
        url = request.getfixturevalue("s3_server").url
        store_url, options = f"s3://{new_bucket(url)}/pg", {"endpoint_url": url}
    host = {
        "ansible_connection": "local",
        "postgres": {"dsn": prod_cluster.dsn(), "databases": [name]},
        "backup": {"store": store_url, **options},
    }
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    store = open_store(store_url, options)
    collided = False
    try:
        for _ in range(3):
            outputs = run_two_at_once(inventory)
            outcomes = [report["results"][0]["details"]["databases"][0] for _, report, _ in outputs]
            done = [o for o in outcomes if o["status"] == "ok"]
            keys = [o["key"] for o in done]
            assert len(keys) == len(set(keys)), f"two successes for one key: {keys}"
            for outcome in done:  # what each run reported is what the store holds
                manifest = Manifest.from_json(
                    store.get_bytes(outcome["key"] + ".manifest.json"), outcome["key"]
                )
                assert manifest.sha256 == outcome["sha256"]
                assert store.stat(outcome["key"]).size == outcome["size"] == manifest.size
            for (code, _, stderr), outcome in zip(outputs, outcomes, strict=True):
                if outcome["status"] != "ok":
                    assert code == 1, stderr
                    assert "another backup of db1/app is in progress" in outcome["error"]
                    collided = True
            if collided:
                break
    finally:
        prod_cluster.drop_database(name)
    assert collided, "the two runs never picked the same second"
    if kind == "file":
        leftovers = [p for p in (tmp_path / "store").rglob(".*")]
        assert leftovers == []
