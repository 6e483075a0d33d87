"""The backup store contract, run against a local directory, moto's S3 and the GCS emulator.

One suite, every backend: what a backup procedure relies on (streaming round trips, listing
under a prefix, nothing left behind by an aborted or failed write, fast preflight) must hold
for each. S3 is also driven through a fault-injecting proxy (500s, a store down for good, a
connection cut mid-read) and measured for memory on a 200 MB upload.
"""

from __future__ import annotations

import gc
import hashlib
import os
import stat
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from backups.stores import ObjectNotFound, Store, StoreError, local, open_store, s3
from backups.stores.local import LocalStore
from maintenance.errors import ConfigError
from tests.conftest import AWS_TEST_SECRET as SECRET_KEY
from tests.harness import Service, free_port
from tests.harness.faults import (
    FaultProxy,
    gcs_upload_chunk,
    is_get,
    s3_complete_multipart,
    s3_upload_part,
)

MIB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("aws_env")


def s3_client(endpoint: str):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


def new_bucket_name() -> str:
    return f"maint-{uuid.uuid4().hex[:16]}"


@dataclass
class Backend:
    """A store under test plus raw access to its whole bucket (or parent directory), to
    plant foreign objects and to see everything that exists, inside the prefix or not."""

    kind: str
    store: Store
    put_raw: Callable[[str, bytes], None]
    raw_names: Callable[[], list[str]]
    unfinished_uploads: Callable[[], list[str]] = list


def local_backend(tmp_path: Path) -> Backend:
    bucket = tmp_path / "bucket"

    def put_raw(name: str, data: bytes) -> None:
        (bucket / name).parent.mkdir(parents=True, exist_ok=True)
        (bucket / name).write_bytes(data)

    def raw_names() -> list[str]:
        return sorted(p.relative_to(bucket).as_posix() for p in bucket.rglob("*") if p.is_file())

    return Backend("local", open_store(str(bucket / "backups")), put_raw, raw_names)


def s3_backend(endpoint: str, **options) -> Backend:
    client = s3_client(endpoint)
    bucket = new_bucket_name()
    client.create_bucket(Bucket=bucket)
    store = open_store(
        f"s3://{bucket}/backups", {"endpoint_url": endpoint, "part_size": "5MiB", **options}
    )

    def put_raw(name: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=name, Body=data)

    def raw_names() -> list[str]:
        return sorted(
            item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])
        )

    def unfinished_uploads() -> list[str]:
        return [
            item["Key"] for item in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        ]

    return Backend("s3", store, put_raw, raw_names, unfinished_uploads)


def gcs_backend(gcs_server: Service, monkeypatch: pytest.MonkeyPatch) -> Backend:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket(new_bucket_name())
    store = open_store(f"gs://{bucket.name}/backups", {"part_size": "4MiB"})

    def put_raw(name: str, data: bytes) -> None:
        bucket.blob(name).upload_from_string(data)

    def raw_names() -> list[str]:
        return sorted(blob.name for blob in client.list_blobs(bucket.name))

    return Backend("gcs", store, put_raw, raw_names)


@pytest.fixture(params=["local", "s3", "gcs"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Backend:
    """Each backend in turn, with a fresh directory or bucket."""
    if request.param == "local":
        return local_backend(tmp_path)
    if request.param == "s3":
        return s3_backend(request.getfixturevalue("s3_server").url)
    return gcs_backend(request.getfixturevalue("gcs_server"), monkeypatch)


@pytest.fixture
def s3_proxy(s3_server: Service) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of moto."""
    with FaultProxy(s3_server.url) as proxy:
        yield proxy


def stream_into(store: Store, key: str, total: int, block: int = MIB) -> str:
    """Write TOTAL pseudo-random bytes to KEY in blocks; return their sha256."""
    digest = hashlib.sha256()
    seed = hashlib.sha256(key.encode()).digest()
    with store.open_write(key) as upload:
        for index in range(-(-total // block)):
            data = (hashlib.sha256(seed + index.to_bytes(8)).digest() * (block // 32 + 1))[
                : min(block, total - index * block)
            ]
            digest.update(data)
            upload.write(data)
    return digest.hexdigest()


def sha256_of(store: Store, key: str) -> str:
    digest = hashlib.sha256()
    with store.open_read(key) as reader:
        while chunk := reader.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# --- the contract, for every backend ---------------------------------------------------------


def test_streamed_object_round_trips_intact(backend: Backend) -> None:
    """A 40 MB object written in 1 MiB pieces (several parts) reads back byte for byte."""
    total = 40 * MIB + 12345
    written = stream_into(backend.store, "db1/app/20240101T000000Z.dump", total)
    info = backend.store.stat("db1/app/20240101T000000Z.dump")
    assert info is not None and info.size == total
    assert info.modified.utcoffset() == timedelta(0)
    assert sha256_of(backend.store, "db1/app/20240101T000000Z.dump") == written


def test_small_and_empty_objects_round_trip(backend: Backend) -> None:
    """put_bytes/get_bytes keep small objects exactly, including an empty one."""
    info = backend.store.put_bytes("db1/app/x.manifest.json", b'{"version": 1}')
    assert (info.key, info.size) == ("db1/app/x.manifest.json", 14)
    assert backend.store.get_bytes("db1/app/x.manifest.json") == b'{"version": 1}'
    assert backend.store.put_bytes("db1/app/empty", b"").size == 0
    assert backend.store.get_bytes("db1/app/empty") == b""


def test_list_yields_nested_keys_under_a_prefix_in_key_order(backend: Backend) -> None:
    """list(prefix) is recursive, relative to the store, and sorted."""
    keys = ["db2/app/b.dump", "db1/app/2.dump", "db1/app/1.dump", "db1/reports/q.dump", "top"]
    for key in keys:
        backend.store.put_bytes(key, key.encode())
    assert [info.key for info in backend.store.list()] == sorted(keys)
    assert [info.key for info in backend.store.list("db1/")] == [
        "db1/app/1.dump",
        "db1/app/2.dump",
        "db1/reports/q.dump",
    ]
    assert [info.key for info in backend.store.list("db1/app/1")] == ["db1/app/1.dump"]
    assert [(info.key, info.size) for info in backend.store.list("db2")] == [("db2/app/b.dump", 14)]
    assert list(backend.store.list("nothing/here/")) == []


def test_objects_outside_the_prefix_are_never_listed_or_deleted(backend: Backend) -> None:
    """A sibling prefix ('backups-old/') and the bucket root are invisible to the store."""
    backend.put_raw("backups-old/db1/app/1.dump", b"foreign")
    backend.put_raw("db1/app/1.dump", b"foreign")
    backend.store.put_bytes("db1/app/1.dump", b"mine")
    assert [info.key for info in backend.store.list()] == ["db1/app/1.dump"]
    backend.store.delete("db1/app/1.dump")
    assert backend.raw_names() == ["backups-old/db1/app/1.dump", "db1/app/1.dump"]


def test_stat_and_delete(backend: Backend) -> None:
    """stat says None for a missing key; delete is idempotent; reads of a gone key fail clearly."""
    assert backend.store.stat("db1/app/missing") is None
    backend.store.put_bytes("db1/app/1.dump", b"12345")
    assert backend.store.stat("db1/app/1.dump").size == 5
    backend.store.delete("db1/app/1.dump")
    backend.store.delete("db1/app/1.dump")
    assert backend.store.stat("db1/app/1.dump") is None
    with pytest.raises(ObjectNotFound):
        backend.store.get_bytes("db1/app/1.dump")


def test_aborted_upload_leaves_nothing(backend: Backend) -> None:
    """After abort() of a multi-part write there is no object and no unfinished upload."""
    upload = backend.store.open_write("db1/app/aborted.dump")
    for _ in range(12):
        upload.write(b"x" * MIB)
    upload.abort()
    upload.abort()  # idempotent
    assert backend.store.stat("db1/app/aborted.dump") is None
    assert backend.raw_names() == []
    assert backend.unfinished_uploads() == []
    with pytest.raises(StoreError, match="aborted"):
        upload.write(b"more")


def test_exception_inside_the_write_block_leaves_nothing(backend: Backend) -> None:
    """A dump failing halfway (exception in the with-block) is re-raised and leaves no object."""
    with (
        pytest.raises(RuntimeError, match="pg_dump died"),
        backend.store.open_write("db1/app/failed.dump") as upload,
    ):
        upload.write(os.urandom(7 * MIB))
        raise RuntimeError("pg_dump died")
    assert backend.store.stat("db1/app/failed.dump") is None
    assert list(backend.store.list()) == []
    assert backend.raw_names() == []
    assert backend.unfinished_uploads() == []


def test_object_appears_only_on_commit(backend: Backend) -> None:
    """While a write is open, neither stat nor list shows the object."""
    upload = backend.store.open_write("db1/app/pending.dump")
    upload.write(b"y" * 6 * MIB)
    assert backend.store.stat("db1/app/pending.dump") is None
    assert list(backend.store.list()) == []
    info = upload.commit()
    assert info.size == 6 * MIB
    assert [item.key for item in backend.store.list()] == ["db1/app/pending.dump"]


def test_upload_dropped_without_commit_never_becomes_an_object(backend: Backend) -> None:
    """An upload object that is simply forgotten (no commit, no abort) creates no object."""
    upload = backend.store.open_write("db1/app/forgotten.dump")
    upload.write(b"z" * 300_000)
    del upload
    gc.collect()
    assert backend.store.stat("db1/app/forgotten.dump") is None
    assert list(backend.store.list()) == []


def test_preflight_passes_and_leaves_no_probe(backend: Backend) -> None:
    """preflight() on a good store succeeds and cleans up after itself."""
    backend.store.preflight()
    assert backend.raw_names() == []


@pytest.fixture(params=["local", "s3", "s3-unreachable", "gcs"])
def broken_store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> tuple[Store, str]:
    """A store that cannot work, and the words its preflight error must contain."""
    if request.param == "local":
        (tmp_path / "a-file").write_text("not a directory")
        return open_store(str(tmp_path / "a-file" / "backups")), "Not a directory"
    if request.param == "s3":
        url = request.getfixturevalue("s3_server").url
        return open_store("s3://no-such-bucket-here/x", {"endpoint_url": url}), "does not exist"
    if request.param == "s3-unreachable":
        # The probe retries as every call does (max_attempts); two attempts keep this quick.
        nobody = f"http://127.0.0.1:{free_port()}"
        options = {"endpoint_url": nobody, "max_attempts": 2}
        return open_store("s3://bucket-a/x", options), "Could not connect"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", request.getfixturevalue("gcs_server").url)
    return open_store("gs://no-such-bucket-here/x"), "does not exist"


def test_preflight_fails_fast_with_a_clear_message(broken_store: tuple[Store, str]) -> None:
    """A missing bucket or an unusable directory is reported within a couple of seconds."""
    store, words = broken_store
    started = time.monotonic()
    with pytest.raises(StoreError, match=words) as caught:
        store.preflight()
    assert time.monotonic() - started < 3
    assert store.url.split("://")[1].split("/")[0] in str(caught.value)


def test_keys_cannot_escape_the_store(backend: Backend) -> None:
    """'..', absolute and empty segments are refused before anything is written."""
    for key in ("../outside", "/etc/passwd", "db1//x", "db1/./x", ""):
        with pytest.raises(ConfigError):
            backend.store.open_write(key)
    with pytest.raises(ConfigError):
        list(backend.store.list("../"))
    assert backend.raw_names() == []


# --- S3 through the fault proxy -------------------------------------------------------------


@pytest.mark.usefixtures("low_backoff_draws")
def test_s3_retries_failed_parts_and_completion(s3_proxy: FaultProxy) -> None:
    """500s on two UploadParts, a part whose connection drops and a 503 on the completion
    are all retried; the object is whole."""
    backend = s3_backend(s3_proxy.url)
    s3_proxy.fail_next(2, status=500, match=s3_upload_part)
    s3_proxy.drop_next(1, match=s3_upload_part)
    s3_proxy.fail_next(1, status=503, match=s3_complete_multipart)
    written = stream_into(backend.store, "db1/app/retried.dump", 17 * MIB)
    assert s3_proxy.faults_served == 4
    assert sha256_of(backend.store, "db1/app/retried.dump") == written
    assert backend.unfinished_uploads() == []


@pytest.mark.usefixtures("low_backoff_draws")
def test_s3_store_down_for_good_fails_and_leaves_nothing(s3_proxy: FaultProxy) -> None:
    """When every UploadPart fails, the write raises StoreError, aborts, and leaves nothing."""
    backend = s3_backend(s3_proxy.url, max_attempts=2)
    s3_proxy.fail_always(match=s3_upload_part, status=503)
    with pytest.raises(StoreError, match="upload part 1") as caught:
        stream_into(backend.store, "db1/app/down.dump", 12 * MIB)
    assert SECRET_KEY not in str(caught.value)
    assert backend.raw_names() == []
    assert backend.unfinished_uploads() == []
    assert s3_proxy.faults_served == 2  # max_attempts


def test_s3_read_resumes_after_a_dropped_connection(s3_proxy: FaultProxy) -> None:
    """A connection cut mid-download is resumed where it stopped; the bytes are intact."""
    backend = s3_backend(s3_proxy.url)
    written = stream_into(backend.store, "db1/app/read.dump", 9 * MIB)
    s3_proxy.drop_next(1, match=is_get, after_bytes=3 * MIB + 7)
    assert sha256_of(backend.store, "db1/app/read.dump") == written
    assert [seen.status for seen in s3_proxy.requests_seen if seen.method == "GET"] == [None, 206]


def test_s3_honours_aws_endpoint_url(s3_server: Service, monkeypatch) -> None:
    """Without an endpoint_url option, boto3's AWS_ENDPOINT_URL setting picks the server."""
    bucket = new_bucket_name()
    s3_client(s3_server.url).create_bucket(Bucket=bucket)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.url)
    store = open_store(f"s3://{bucket}/p")
    store.preflight()
    store.put_bytes("k", b"v")
    assert s3_client(s3_server.url).get_object(Bucket=bucket, Key="p/k")["Body"].read() == b"v"


def test_s3_upload_options_reach_the_object(s3_server: Service) -> None:
    """storage_class and sse are applied to single and multipart uploads alike."""
    backend = s3_backend(s3_server.url, storage_class="STANDARD_IA", sse="AES256")
    backend.store.put_bytes("small", b"s")
    stream_into(backend.store, "large", 11 * MIB)
    client = s3_client(s3_server.url)
    for key in ("small", "large"):
        head = client.head_object(Bucket=backend.store.bucket, Key=f"backups/{key}")
        assert (head["StorageClass"], head["ServerSideEncryption"]) == ("STANDARD_IA", "AES256")


def test_s3_upload_memory_stays_bounded(s3_server: Service) -> None:
    """A 200 MB streamed upload with the default 8 MiB parts holds about two parts at most."""
    bucket = new_bucket_name()
    s3_client(s3_server.url).create_bucket(Bucket=bucket)
    store = open_store(f"s3://{bucket}/mem", {"endpoint_url": s3_server.url})
    block = os.urandom(MIB)
    assert store.stat("big.dump") is None  # boto3 client and models loaded before measuring
    tracemalloc.start()
    try:
        with store.open_write("big.dump") as upload:
            for _ in range(200):
                upload.write(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert upload.info is not None and upload.info.size == 200 * MIB
    print(f"tracemalloc peak for a 200 MiB upload: {peak / MIB:.1f} MiB")
    assert peak < 3 * 8 * MIB
    store.delete("big.dump")


def test_s3_parts_grow_so_big_dumps_fit_in_10000_parts(s3_server: Service, monkeypatch) -> None:
    """Part sizes double every PARTS_PER_STEP parts (here 2): 5, 5, 10, 10, then the rest."""
    monkeypatch.setattr(s3, "PARTS_PER_STEP", 2)
    backend = s3_backend(s3_server.url)
    digest = stream_into(backend.store, "growing", 33 * MIB)
    client = s3_client(s3_server.url)
    sizes = [
        client.head_object(Bucket=backend.store.bucket, Key="backups/growing", PartNumber=n)[
            "ContentLength"
        ]
        for n in range(1, 6)
    ]
    assert sizes == [5 * MIB, 5 * MIB, 10 * MIB, 10 * MIB, 3 * MIB]
    assert hashlib.sha256(backend.store.get_bytes("growing")).hexdigest() == digest


# --- GCS through the fault proxy ------------------------------------------------------------


@pytest.mark.usefixtures("low_backoff_draws")
def test_gcs_retries_failed_chunks(gcs_server: Service, monkeypatch) -> None:
    """503s on two resumable-upload chunks are retried; the object is whole."""
    with FaultProxy(gcs_server.url) as proxy:
        backend = gcs_backend(gcs_server, monkeypatch)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        store = open_store(backend.store.url, {"part_size": "1MiB"})
        proxy.fail_next(2, status=503, match=gcs_upload_chunk)
        written = stream_into(store, "db1/app/retried.dump", 5 * MIB + 3)
        assert proxy.faults_served == 2
        assert sha256_of(store, "db1/app/retried.dump") == written


def test_gcs_store_down_for_good_fails_within_retry_timeout(
    gcs_server: Service, monkeypatch
) -> None:
    """Every chunk refused: the write fails once retry_timeout is spent, and no object appears."""
    with FaultProxy(gcs_server.url) as proxy:
        backend = gcs_backend(gcs_server, monkeypatch)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        store = open_store(backend.store.url, {"part_size": "1MiB", "retry_timeout": 3})
        proxy.fail_always(match=gcs_upload_chunk, status=503)
        started = time.monotonic()
        with pytest.raises(StoreError, match="upload"):
            stream_into(store, "db1/app/down.dump", 5 * MIB)
        assert time.monotonic() - started < 30
        assert proxy.faults_served >= 2  # retried before giving up
    assert backend.raw_names() == []


# --- local specifics -------------------------------------------------------------------------


def test_local_store_keeps_files_private_and_hides_partial_writes(tmp_path: Path) -> None:
    """Directories are 0700, files 0600; an unfinished write is a hidden temp file, unlisted."""
    store = LocalStore(tmp_path / "store")
    upload = store.open_write("db1/app/1.dump")
    upload.write(b"partial")
    partials = list((tmp_path / "store/db1/app").iterdir())
    assert [p.name.startswith(".1.dump.partial-") for p in partials] == [True]
    assert list(store.list()) == []
    upload.commit()
    for directory in ("store", "store/db1", "store/db1/app"):
        assert stat.S_IMODE((tmp_path / directory).stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "store/db1/app/1.dump").stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "store/db1/app").iterdir()] == ["1.dump"]


def test_abort_inside_the_block_is_final(tmp_path: Path) -> None:
    """Aborting explicitly inside the with-block ends the upload; leaving the block is quiet."""
    store = LocalStore(tmp_path / "store")
    with store.open_write("db1/app/1.dump") as upload:
        upload.write(b"unwanted")
        upload.abort()
    assert upload.info is None
    assert list((tmp_path / "store").rglob("*.dump*")) == []


def test_local_store_flushes_while_writing_and_keeps_every_byte(
    tmp_path: Path, monkeypatch
) -> None:
    """Background flushes every MiB (32 MiB by default) leave the object intact; an upload
    aborted between flushes leaves nothing behind."""
    monkeypatch.setattr(local, "WRITE_BEHIND", MIB)
    store = LocalStore(tmp_path / "store")
    written = stream_into(store, "db1/app/1.dump", 20 * MIB + 7, block=MIB // 4)
    assert sha256_of(store, "db1/app/1.dump") == written
    with pytest.raises(RuntimeError), store.open_write("db1/app/2.dump") as upload:
        for _ in range(12):
            upload.write(os.urandom(MIB // 2))
        raise RuntimeError("dump failed")
    assert [p.name for p in (tmp_path / "store/db1/app").iterdir()] == ["1.dump"]


# --- open_store -----------------------------------------------------------------------------


def test_open_store_picks_the_backend_from_the_url(tmp_path: Path) -> None:
    """file://, plain paths, s3:// and gs:// each give their backend; the URL shows no secret."""
    assert open_store(tmp_path.as_uri()).url == tmp_path.as_uri()
    assert open_store(str(tmp_path)).url == tmp_path.as_uri()
    assert open_store("s3://bucket-a/some/prefix/").url == "s3://bucket-a/some/prefix/"
    assert open_store("gs://bucket-b").url == "gs://bucket-b/"


def test_open_store_rejects_unknown_schemes_naming_the_known_ones() -> None:
    """An unknown scheme is a configuration error that lists file://, s3:// and gs://."""
    with pytest.raises(ConfigError, match=r"'azure'.*file://, s3://, gs://"):
        open_store("azure://container/x")


def test_open_store_reports_every_bad_option_together() -> None:
    """Bad values and options of another backend are listed in one error, secrets masked."""
    with pytest.raises(ConfigError) as caught:
        open_store(
            "s3://user:hunter22@bucket-a/x",
            {
                "sse": "rot13",
                "part_size": "1MiB",
                "storage_class": "CHEAP",
                "kms_key_name": "projects/p/keys/k",
                "max_attempts": 0,
                "retention": {"keep_daily": 7},  # not a store option: ignored here
            },
        )
    message = str(caught.value)
    for words in (
        "credentials",
        "'sse'",
        "'part_size'",
        "'storage_class'",
        "gs://",
        "'max_attempts'",
    ):
        assert words in message
    assert "hunter22" not in message
    with pytest.raises(ConfigError, match="sse_kms_key_id"):
        open_store("s3://bucket-a", {"sse_kms_key_id": "key"})


def test_gcs_part_size_is_rounded_to_whole_256_kib_chunks() -> None:
    """A decimal size such as 10MB becomes the next multiple of 256 KiB."""
    store = open_store("gs://bucket-b/x", {"part_size": "10MB"})
    assert (
        store.part_size % (256 * 1024) == 0
        and 10_000_000 <= store.part_size < 10_000_000 + 256 * 1024
    )
