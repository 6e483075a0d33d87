"""Session-wide real services for the maintenance tool's tests.

Nothing here skips: if PostgreSQL, sshd, moto or the GCS emulator cannot start, the
fixture errors with the reason, because a silently skipped integration test hides bugs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import (
    Cluster,
    Service,
    SshFleet,
    start_fleet,
    start_gcs_emulator,
    start_moto,
)
from tests.harness.postgres import process_cluster

FLEET_SIZE = 5

# Fake AWS credentials and no user cloud config, so S3 clients only ever talk to loopback.
AWS_TEST_SECRET = "not-a-real-secret-but-never-shown"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials, no config file, no metadata server, no endpoint from the user's env."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_TEST_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


# Where in its range each retry's wait is drawn when a test pins the draw (see below).
LOW_DRAW = 0.01


class _LowDraws:
    """Stands in for the `random` module of google.api_core's backoff: the low end, always."""

    @staticmethod
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * LOW_DRAW


@pytest.fixture
def low_backoff_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 and GCS clients wait 1% of each jittered backoff range instead of a random share.

    Both SDKs wait rand(0, 1) x 1, 2, 4 ... s before a retry, ~3.5 s on average for three
    faults: time a test that counts retries (and never times them) spends asleep. A draw this
    low is one the real jitter can make; the attempts, the requests and the outcome are the
    SDKs' own.
    """
    import functools

    from botocore.retries import standard
    from google.api_core.retry import retry_base

    monkeypatch.setattr(
        standard.ExponentialBackoff,
        "__init__",
        functools.partialmethod(standard.ExponentialBackoff.__init__, random=lambda: LOW_DRAW),
    )
    monkeypatch.setattr(retry_base, "random", _LowDraws)


def _cluster(role: str) -> Iterator[Cluster]:
    """A cluster named for this pytest process, so concurrent runs never drop each other's."""
    with process_cluster("maint_test", role) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def prod_cluster() -> Iterator[Cluster]:
    """The 'production' PostgreSQL 15 cluster (maint superuser, scram over TCP)."""
    yield from _cluster("prod")


@pytest.fixture(scope="session")
def staging_cluster() -> Iterator[Cluster]:
    """A second cluster, e.g. the target of restore drills."""
    yield from _cluster("staging")


@pytest.fixture(scope="session")
def ssh_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshFleet]:
    """Five sshd-backed hosts node01..node05 (user fleet) sharing one port."""
    fleet = start_fleet(FLEET_SIZE, tmp_path_factory.mktemp("ssh"))
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Service]:
    """moto S3 server; use endpoint_url=s3_server.url, region us-east-1, any keys."""
    service = start_moto()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def gcs_server() -> Iterator[Service]:
    """GCS emulator, per module because it never frees memory.

    Clients need STORAGE_EMULATOR_HOST=gcs_server.url and AnonymousCredentials.
    """
    service = start_gcs_emulator()
    try:
        yield service
    finally:
        service.stop()
