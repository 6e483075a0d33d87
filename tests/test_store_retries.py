"""One retry policy for every S3 and GCS call, the pre-backup probe included (issue 14, item 5).

A fault-injecting proxy in front of moto and the GCS emulator answers 500/503 a few times and
then lets requests through, as a store does while it recovers. Every store call must get
through that; before, the S3 probe gave up after two attempts and the GCS probe after one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from backups.stores import Store, open_store
from tests.harness import Service
from tests.harness.faults import FaultProxy, any_request, s3_put_object
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

KEY = "db1/app/20240501T000000Z.dump"


# These tests count retries and never time them: no need to sleep through random backoffs.
pytestmark = pytest.mark.usefixtures("aws_env", "low_backoff_draws")


def bucket_name() -> str:
    return f"retry-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["s3", "gcs"])
def faulty(request, monkeypatch) -> Iterator[tuple[Store, FaultProxy]]:
    """A store reached through a fault proxy, with one object already in it."""
    if request.param == "s3":
        server: Service = request.getfixturevalue("s3_server")
        bucket = bucket_name()
        boto3.client("s3", endpoint_url=server.url).create_bucket(Bucket=bucket)
        with FaultProxy(server.url) as proxy:
            store = open_store(f"s3://{bucket}/pg", {"endpoint_url": proxy.url})
            store.put_bytes(KEY, b"dump bytes")
            yield store, proxy
        return
    server = request.getfixturevalue("gcs_server")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    bucket = storage.Client(project="t", credentials=AnonymousCredentials()).create_bucket(
        bucket_name()
    )
    with FaultProxy(server.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        store = open_store(f"gs://{bucket.name}/pg", {"retry_timeout": 30})
        store.put_bytes(KEY, b"dump bytes")
        yield store, proxy


CALLS: dict[str, Callable[[Store], object]] = {
    "preflight": lambda store: store.preflight(),
    "put": lambda store: store.put_bytes("db1/app/other.dump", b"x" * 1000),
    "stat": lambda store: store.stat(KEY),
    "list": lambda store: list(store.list("db1/")),
    "read": lambda store: store.get_bytes(KEY),
    "delete": lambda store: store.delete(KEY),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status", [500, 503])
def test_every_call_gets_through_a_store_that_is_recovering(faulty, call, status) -> None:
    """Three failed answers, then the store works: the call succeeds after retrying."""
    store, proxy = faulty
    proxy.fail_next(3, status=status, match=any_request)
    CALLS[call](store)
    assert proxy.faults_served == 3
    answered = [seen.status for seen in proxy.requests_seen if not seen.injected]
    assert answered and all(status < 300 for status in answered), answered


def test_backup_db_survives_500s_on_the_probe(prod_cluster, s3_server, tmp_path) -> None:
    """The command that showed it: the store answers the reachability probe's PutObject with
    two 500s before it recovers; backup.db must still back up (exit 0)."""
    name = "retryprobe"
    prod_cluster.create_database(name)
    prod_cluster.execute("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i", dbname=name)
    bucket = bucket_name()
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket=bucket)
    try:
        with FaultProxy(s3_server.url) as proxy:
            host = {
                "ansible_connection": "local",
                "postgres": {"dsn": prod_cluster.dsn(), "databases": [name]},
                "backup": {"store": f"s3://{bucket}/pg", "endpoint_url": proxy.url},
            }
            inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
            proxy.fail_next(2, status=500, match=s3_put_object)
            done = run_maint_cli(["backup.db", "-i", str(inventory), "--json"])
            assert done.returncode == 0, done.stderr
            assert proxy.faults_served == 2
        [outcome] = json.loads(done.stdout)["results"][0]["details"]["databases"]
        assert outcome["status"] == "ok"
    finally:
        prod_cluster.drop_database(name)
