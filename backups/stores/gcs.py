"""A store in a Google Cloud Storage bucket (gs://bucket/prefix), through google-cloud-storage.

Uploads are resumable sessions sent in chunks of part_size (a multiple of 256 KiB), so
memory stays near two chunks whatever the dump size; the object appears only when the
session is finalized by commit(). Abort cancels the session, and an unfinished session never
creates an object. Chunk uploads and reads are retried on 429, 5xx, timeouts and dropped
connections by the library's policy, for at most retry_timeout seconds per request (default
120, the library's own); a store that is down for good fails after that, with nothing left.
An exclusive write finalizes with ifGenerationMatch=0, so GCS refuses it (412) when the key
exists (the emulator ignores preconditions: there only real GCS enforces it).
With STORAGE_EMULATOR_HOST set, the client talks to that emulator anonymously.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC
from typing import Any, BinaryIO

from maintenance.secrets import mask_text
from maintenance.settings.backup import BackupSettings

from .base import (
    PROBE_PREFIX,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Store,
    StoreError,
    Upload,
    check_key,
    check_prefix,
    split_bucket_url,
)

KIB = 1024
MIB = 1024 * KIB
CHUNK_MULTIPLE = 256 * KIB  # resumable upload chunks must be multiples of this
DEFAULT_PART_SIZE = 16 * MIB
EMULATOR_PROJECT = "maint-local"
_TIMEOUT = (10, 60)  # connect, read (seconds) for every request
_PREFLIGHT_TIMEOUT = (2, 5)
DEFAULT_RETRY_TIMEOUT = 120  # seconds of backoff per request, as the library's default


def from_settings(backup: BackupSettings) -> GcsStore:
    """The GcsStore of a 'gs://bucket/prefix' store with its gs options (checked settings).

    part_size is rounded up to a multiple of 256 KiB, as resumable uploads require.
    """
    bucket, prefix = split_bucket_url(backup.store_url)
    part_size = backup.part_size or DEFAULT_PART_SIZE
    return GcsStore(
        bucket,
        prefix,
        project=backup.project,
        kms_key_name=backup.kms_key_name,
        storage_class=backup.storage_class,
        part_size=-(-part_size // CHUNK_MULTIPLE) * CHUNK_MULTIPLE,
        retry_timeout=backup.retry_timeout or DEFAULT_RETRY_TIMEOUT,
    )


class GcsStore(Store):
    """Objects under PREFIX ('' or ending in '/') in BUCKET; the client is made on first use."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        project: str | None = None,
        kms_key_name: str | None = None,
        storage_class: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        retry_timeout: int = DEFAULT_RETRY_TIMEOUT,
    ) -> None:
        if part_size % CHUNK_MULTIPLE:
            raise ValueError(f"part_size must be a multiple of {CHUNK_MULTIPLE}")
        self.bucket_name = bucket
        self.prefix = prefix
        self.url = f"gs://{bucket}/{prefix}"
        self.part_size = part_size
        self.retry_timeout = retry_timeout
        self._project = project
        self._kms_key_name = kms_key_name
        self._storage_class = storage_class
        self._client: Any = None
        self._lock = threading.Lock()

    def open_write(self, key: str, *, exclusive: bool = False) -> Upload:
        return _GcsUpload(self, key, exclusive)

    def retry(self) -> Any:
        """The library's default retry policy, given up after retry_timeout seconds."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.retry_timeout)

    def open_read(self, key: str) -> BinaryIO:
        blob = self.blob(key)
        try:
            blob.reload(timeout=_TIMEOUT, retry=self.retry())
        except Exception as exc:
            if _status(exc) == 404:
                raise ObjectNotFound(f"{self.url}: no object {key!r}") from exc
            raise self.error("read", key, exc) from exc
        # Pin the generation: an object replaced mid-read fails instead of mixing versions.
        reader = blob.open(
            "rb",
            chunk_size=self.part_size,
            if_generation_match=blob.generation,
            timeout=_TIMEOUT,
            retry=self.retry(),
        )
        return io.BufferedReader(_GcsReader(self, key, reader), buffer_size=MIB)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        try:
            for blob in self.client().list_blobs(
                self.bucket_name,
                prefix=self.prefix + prefix,
                timeout=_TIMEOUT,
                retry=self.retry(),
            ):
                key = blob.name[len(self.prefix) :]
                if key and not key.endswith("/"):  # skip console 'folder' placeholders
                    yield ObjectInfo(key, blob.size, blob.updated.astimezone(UTC))
        except Exception as exc:
            raise self.error("list", prefix, exc) from exc

    def stat(self, key: str) -> ObjectInfo | None:
        blob = self.blob(key)
        try:
            blob.reload(timeout=_TIMEOUT, retry=self.retry())
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise self.error("stat", key, exc) from exc
        return ObjectInfo(key, blob.size, blob.updated.astimezone(UTC))

    def delete(self, key: str) -> None:
        try:
            self.blob(key).delete(timeout=_TIMEOUT, retry=self.retry())
        except Exception as exc:
            if _status(exc) != 404:
                raise self.error("delete", key, exc) from exc

    def preflight(self) -> None:
        """Write and delete a probe object, with short timeouts but the store's one retry
        policy: a 503 from a store that is recovering must not fail the backup up front."""
        key = PROBE_PREFIX + secrets.token_hex(8)
        blob = self.blob(key)
        try:
            blob.upload_from_string(b"probe\n", timeout=_PREFLIGHT_TIMEOUT, retry=self.retry())
            blob.delete(timeout=_PREFLIGHT_TIMEOUT, retry=self.retry())
        except Exception as exc:
            raise self.error("write a probe object", key, exc) from exc

    def blob(self, key: str) -> Any:
        """The library's Blob for KEY, carrying the store's KMS key and storage class."""
        bucket = self.client().bucket(self.bucket_name)
        blob = bucket.blob(self.prefix + check_key(key), kms_key_name=self._kms_key_name)
        if self._storage_class is not None:
            blob.storage_class = self._storage_class
        return blob

    def client(self) -> Any:
        """The storage client: anonymous against STORAGE_EMULATOR_HOST, else default
        credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's login, a service account)."""
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        from google.cloud import storage

        try:
            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                project = self._project or os.environ.get("GOOGLE_CLOUD_PROJECT")
                return storage.Client(
                    project=project or EMULATOR_PROJECT, credentials=AnonymousCredentials()
                )
            return storage.Client(project=self._project)
        except Exception as exc:
            raise self.error("set up the client", "", exc) from exc

    def error(self, action: str, key: str, exc: BaseException) -> StoreError:
        """A StoreError for a failed ACTION on KEY, saying why in words and without secrets."""
        if isinstance(exc, StoreError):
            return exc
        target = f" {key!r}" if key else ""
        return StoreError(mask_text(f"{self.url}: cannot {action}{target}: {self._reason(exc)}"))

    def _reason(self, exc: BaseException) -> str:
        from google.auth.exceptions import DefaultCredentialsError

        if isinstance(exc, DefaultCredentialsError):
            return (
                "no Google credentials found (set GOOGLE_APPLICATION_CREDENTIALS, run "
                "'gcloud auth application-default login' or use a service account)"
            )
        status = _status(exc)
        if status == 404:
            return f"bucket {self.bucket_name!r} does not exist (or the object is gone)"
        if status in (401, 403):
            return f"access denied (HTTP {status}); check the credentials and bucket permissions"
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return f"HTTP {status}: {message}" if status else message


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a google.api_core or resumable-upload error, if it has one."""
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


@functools.cache
def _blob_writer_class() -> type:
    """BlobWriter that never finalizes an upload when garbage-collected.

    io's finalizer calls close(), and BlobWriter.close() completes the object with whatever
    was buffered: a dropped, unfinished upload would turn into a truncated object.
    """
    from google.cloud.storage.fileio import BlobWriter

    class _Writer(BlobWriter):
        def __del__(self) -> None:
            return

    return _Writer


class _GcsUpload(Upload):
    """A resumable upload session, started on the first full chunk or at commit."""

    def __init__(self, store: GcsStore, key: str, exclusive: bool = False) -> None:
        super().__init__(key)
        self._store = store
        self._exclusive = exclusive
        condition = {"if_generation_match": 0} if exclusive else {}
        self._writer = _blob_writer_class()(
            store.blob(key),
            chunk_size=store.part_size,
            ignore_flush=True,
            content_type="application/octet-stream",
            timeout=_TIMEOUT,
            retry=store.retry(),
            **condition,
        )

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._writer.write(data)
        except Exception as exc:
            raise self._store.error("upload", self.key, exc) from exc

    def _commit(self) -> ObjectInfo:
        try:
            self._writer.close()
        except Exception as exc:
            if self._exclusive and _status(exc) == 412:
                raise ObjectExists(self._store.url, self.key) from exc
            raise self._store.error("upload", self.key, exc) from exc
        info = self._store.stat(self.key)
        if info is None:
            raise StoreError(f"{self._store.url}: {self.key!r} is missing after its upload")
        return info

    def _abort(self) -> None:
        try:
            self._writer.terminate()
        except Exception as exc:
            # The session stays unfinished and expires by itself: still no object.
            raise self._store.error("cancel the upload session of", self.key, exc) from exc


class _GcsReader(io.RawIOBase):
    """Turns the library's chunked, retried reads into a raw stream with StoreError errors."""

    def __init__(self, store: GcsStore, key: str, reader: Any) -> None:
        self._store = store
        self._key = key
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._reader.read(len(buffer))
        except Exception as exc:
            raise self._store.error("read", self._key, exc) from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()
