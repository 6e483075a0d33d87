"""Checks that the test services behave like the real things the product talks to."""

from __future__ import annotations

import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import psycopg
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.harness import Cluster, Service, SshFleet


def test_prod_cluster_requires_the_maint_password_over_tcp(prod_cluster: Cluster) -> None:
    assert prod_cluster.execute("SELECT current_user, inet_server_addr()::text") == [
        ("maint", "127.0.0.1/32")
    ]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=prod_cluster.host,
            port=prod_cluster.port,
            user="maint",
            password="not-the-password",
            dbname="postgres",
            connect_timeout=5,
        )
    with pytest.raises(psycopg.OperationalError):
        # No password at all must not be enough either (scram, not trust, on TCP).
        psycopg.connect(
            prod_cluster.dsn(with_password=False),
            connect_timeout=5,
            options="",
            passfile="/dev/null",
        )


def test_create_database_starts_empty(prod_cluster: Cluster) -> None:
    prod_cluster.create_database("harness-check")
    prod_cluster.execute("CREATE TABLE t (x int)", dbname="harness-check")
    prod_cluster.create_database("harness-check")
    assert prod_cluster.execute(
        "SELECT count(*) FROM pg_tables WHERE tablename = 't'", dbname="harness-check"
    ) == [(0,)]
    prod_cluster.drop_database("harness-check")
    assert (
        prod_cluster.execute("SELECT 1 FROM pg_database WHERE datname = %s", ("harness-check",))
        == []
    )


def test_staging_is_a_separate_cluster(prod_cluster: Cluster, staging_cluster: Cluster) -> None:
    assert staging_cluster.port != prod_cluster.port
    assert staging_cluster.password != prod_cluster.password
    assert staging_cluster.execute("SHOW fsync") == [("off",)]


def test_plain_ssh_reaches_every_fleet_host_with_verified_host_keys(ssh_fleet: SshFleet) -> None:
    assert [h.name for h in ssh_fleet.hosts] == [f"node0{i}" for i in range(1, 6)]

    def whoami(host):
        return subprocess.run(
            ssh_fleet.ssh_argv(host, "whoami"),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    with ThreadPoolExecutor(len(ssh_fleet.hosts)) as pool:
        results = list(pool.map(whoami, ssh_fleet.hosts))
    for host, result in zip(ssh_fleet.hosts, results, strict=True):
        assert (result.returncode, result.stdout) == (0, "fleet\n"), (host, result.stderr)


def test_ssh_refuses_a_host_missing_from_known_hosts(ssh_fleet: SshFleet) -> None:
    host = ssh_fleet.hosts[0]
    argv = ssh_fleet.ssh_argv(host, "true")
    argv[argv.index(f"UserKnownHostsFile={ssh_fleet.known_hosts}")] = "UserKnownHostsFile=/dev/null"
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 255
    assert "Host key verification failed" in result.stderr


def test_boto3_round_trips_an_object_on_moto(s3_server: Service) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = f"harness-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dumps/prod.sql.gz", Body=b"\x1f\x8bpayload")
    body = s3.get_object(Bucket=bucket, Key="dumps/prod.sql.gz")["Body"].read()
    assert body == b"\x1f\x8bpayload"


def test_gcs_client_round_trips_an_object_on_the_emulator(
    gcs_server: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"harness-{uuid.uuid4().hex[:12]}")
    payload = bytes(range(256)) * 4096  # 1 MiB: a resumable, multi-chunk upload
    blob = bucket.blob("dumps/prod.sql.gz", chunk_size=256 * 1024)
    blob.upload_from_string(payload)
    assert client.bucket(bucket.name).blob("dumps/prod.sql.gz").download_as_bytes() == payload
