"""PostgreSQL clusters, an S3 server and an SSH host for benchmarks, always removed at the end.

Cluster names carry the benchmark's pid (`maint_bench_<role>_<pid>`), so benchmarks and test
runs in parallel never touch each other's; clusters of benchmarks that died (pid gone) are
dropped on the next start.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tests.harness import Cluster, Service, SshFleet, start_fleet, start_moto
from tests.harness.postgres import PG_VERSION, process_cluster

PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def bench_cluster(role: str) -> AbstractContextManager[Cluster]:
    """A fresh cluster for this benchmark process, destroyed on exit (Ctrl-C included)."""
    return process_cluster("maint_bench", role)


@contextmanager
def moto_server() -> Iterator[Service]:
    service = start_moto()
    try:
        yield service
    finally:
        service.stop()


@contextmanager
def fleet_host_trees(prefix: str) -> Iterator[tuple[SshFleet, Path, Path]]:
    """One SSH host on loopback (user `fleet`, a plain shell), a scratch directory and a
    directory for the trees it works on: under /var/tmp (a disk, not the tmpfs of /tmp) and
    readable by the fleet user."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    trees = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    trees.chmod(0o755)
    try:
        fleet = start_fleet(1, workdir / "ssh", user="fleet")
        try:
            yield fleet, workdir, trees
        finally:
            fleet.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(trees, ignore_errors=True)


def s3_client(service: Service):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=service.url,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_DEFAULT_REGION"],
    )


def empty_bucket(client, bucket: str) -> None:
    """Delete every object: moto holds them all in memory."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", ()):
            client.delete_object(Bucket=bucket, Key=item["Key"])


def libpq_env(cluster: Cluster) -> dict[str, str]:
    """The password for the raw tools, kept out of their argv as the product keeps it."""
    return {"PGPASSWORD": cluster.password}
