"""backup.prune sweeps what killed backups leave behind (issue 14, item 4): hidden partial
files of the local store and unfinished S3 multipart uploads, under the host's own prefix,
once older than backup.incomplete_grace; a dry run lists them; a running backup's are kept.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from backups.archive.leftovers import sweep_leftovers
from backups.stores import open_store
from maintenance.settings import parse_duration
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

pytestmark = pytest.mark.usefixtures("aws_env")


def prune(inventory: Path, *flags: str) -> dict:
    done = run_maint_cli(["backup.prune", "-i", str(inventory), "--json", *flags])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["results"][0]


def inventory_for(tmp_path: Path, prod_cluster, backup: dict) -> Path:
    host = {
        "ansible_connection": "local",
        "postgres": {"dsn": prod_cluster.dsn()},
        "backup": {"retention": {"keep_last": 1}, **backup},
    }
    return write_inventory(tmp_path / "inv.yaml", {"db1": host})


def test_local_partial_files_older_than_the_grace_are_removed(tmp_path, prod_cluster) -> None:
    store = tmp_path / "store"
    directory = store / "db1" / "app"
    directory.mkdir(parents=True)
    dead = directory / ".20240501T000000Z.dump.zst.partial-k1ll3d"
    running = directory / ".20240502T000000Z.dump.zst.partial-runn1ng"
    foreign = store / "db2" / "app" / ".20240501T000000Z.dump.zst.partial-0th3r"
    foreign.parent.mkdir(parents=True)
    for path in (dead, running, foreign):
        path.write_bytes(b"x" * 4096)
    three_days_ago = time.time() - 3 * 86400
    for path in (dead, foreign):
        os.utime(path, (three_days_ago, three_days_ago))
    inventory = inventory_for(tmp_path, prod_cluster, {"store": str(store)})

    planned = prune(inventory, "--dry-run")
    assert [item["key"] for item in planned["details"]["unfinished_removed"]] == [
        "db1/app/" + dead.name
    ]
    assert "would remove" in planned["summary"] and "1 unfinished" in planned["summary"]
    assert dead.exists()

    done = prune(inventory)
    assert done["status"] == "changed"
    assert not dead.exists()
    assert running.exists(), "a running backup's partial file was removed"
    assert foreign.exists(), "another host's partial file was removed"


def test_s3_multipart_uploads_older_than_the_grace_are_aborted(s3_server) -> None:
    """The sweep backup.prune runs, with its clock moved on: the grace's floor (1h, refused
    below at load) is longer than a test waits, and moto's upload times cannot be set."""
    client = boto3.client("s3", endpoint_url=s3_server.url)
    bucket = f"left-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def start(key: str) -> str:
        upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 100)
        return upload

    start("pg/db1/app/20240501T000000Z.dump.zst")  # a killed backup
    start("pg/db2/app/20240501T000000Z.dump.zst")  # another host's
    start("elsewhere/db1/app/20240501T000000Z.dump.zst")  # outside the store's prefix
    time.sleep(6)
    start("pg/db1/app/20240502T000000Z.dump.zst")  # a running backup
    store = open_store(f"s3://{bucket}/pg", {"endpoint_url": s3_server.url})
    grace = parse_duration("1h")
    # An hour on, less 3 s: the killed upload (6 s older) is past the grace, the running one not.
    now = datetime.now(UTC) + grace - timedelta(seconds=3)

    def uploads() -> list[str]:
        return sorted(u["Key"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"])

    planned = sweep_leftovers(store, "db1", grace, dry_run=True, now=now)
    assert [item["key"] for item in planned] == ["db1/app/20240501T000000Z.dump.zst"]
    assert len(uploads()) == 4

    sweep_leftovers(store, "db1", grace, dry_run=False, now=now)
    assert uploads() == [
        "elsewhere/db1/app/20240501T000000Z.dump.zst",
        "pg/db1/app/20240502T000000Z.dump.zst",
        "pg/db2/app/20240501T000000Z.dump.zst",
    ]
