"""A store in an S3 bucket or an S3-compatible service (s3://bucket/prefix), through boto3.

Uploads use explicit multipart with at most two part buffers alive: one filling, one in
flight on a single worker thread, so memory stays near 2 x part_size (boto3's upload_fileobj fed
from a pipe was measured holding twice the dump). S3 allows 10 000 parts per object, so part
sizes double every PARTS_PER_STEP parts: 8 MiB parts carry the first 8 GiB, 16 MiB parts the
next 16 GiB, and so on, so any object S3 accepts (5 TiB) fits. Memory grows only past 8 GiB,
in steps: about 2 x 128 MiB around 100 GiB. Objects smaller
than one part go up in a single PutObject. Every request, UploadPart and
CompleteMultipartUpload included, is retried by botocore's 'standard' retry mode on 5xx,
throttling, timeouts and dropped connections; a write that still fails aborts its multipart
upload so neither a partial object nor a dangling upload remains. An exclusive write sends
If-None-Match: * with its PutObject or CompleteMultipartUpload, so S3 refuses it (412) when the
key exists; moto enforces it too.
"""

from __future__ import annotations

import builtins
import io
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC
from typing import Any, BinaryIO

from maintenance.secrets import mask_text
from maintenance.settings.backup import PART_SIZES, BackupSettings

from .base import (
    PROBE_PREFIX,
    Leftover,
    ObjectInfo,
    ObjectNotFound,
    Store,
    StoreError,
    Upload,
    check_key,
    check_prefix,
    split_bucket_url,
)
from .s3_upload import S3Upload

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MIB
MAX_PART_SIZE = PART_SIZES["s3"][1]  # S3's most for one part (the settings hold the range)
PARTS_PER_STEP = 1_000  # parts of one size before the size doubles
DEFAULT_MAX_ATTEMPTS = 5
# Errors S3 answers when the credentials are missing, wrong or not allowed.
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
_MISSING = {"404", "NoSuchKey", "NotFound"}
# A conditional create lost: the key exists, or another conditional write is completing.
_TAKEN = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def from_settings(backup: BackupSettings) -> S3Store:
    """The S3Store of an 's3://bucket/prefix' store with its s3 options (checked settings)."""
    bucket, prefix = split_bucket_url(backup.store_url)
    return S3Store(
        bucket,
        prefix,
        endpoint_url=backup.endpoint_url,
        region=backup.region,
        storage_class=backup.storage_class,
        sse=backup.sse,
        sse_kms_key_id=backup.sse_kms_key_id,
        part_size=backup.part_size or DEFAULT_PART_SIZE,
        max_attempts=backup.max_attempts or DEFAULT_MAX_ATTEMPTS,
    )


class S3Store(Store):
    """Objects under PREFIX ('' or ending in '/') in BUCKET; clients are made on first use."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}"
        self.part_size = part_size
        self.max_attempts = max_attempts
        self._endpoint_url = endpoint_url
        self._region = region
        self.upload_args = {
            name: value
            for name, value in (
                ("StorageClass", storage_class),
                ("ServerSideEncryption", sse),
                ("SSEKMSKeyId", sse_kms_key_id),
            )
            if value is not None
        }
        self._clients: dict[bool, Any] = {}
        self._session: Any = None
        self._lock = threading.Lock()

    def open_write(self, key: str, *, exclusive: bool = False) -> Upload:
        return S3Upload(self, key, exclusive)

    def open_read(self, key: str) -> BinaryIO:
        return io.BufferedReader(_S3Reader(self, key), buffer_size=MIB)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        pages = self.client().get_paginator("list_objects_v2")
        try:
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", ()):
                    key = item["Key"][len(self.prefix) :]
                    if key and not key.endswith("/"):  # skip console 'folder' markers
                        yield ObjectInfo(key, item["Size"], item["LastModified"].astimezone(UTC))
        except Exception as exc:
            raise self.error("list", prefix or "", exc) from exc

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            head = self.client().head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise self.error("stat", key, exc) from exc
        return ObjectInfo(key, head["ContentLength"], head["LastModified"].astimezone(UTC))

    def delete(self, key: str) -> None:
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            raise self.error("delete", key, exc) from exc

    def leftovers(self, prefix: str = "") -> builtins.list[Leftover]:  # list: a method here
        """Unfinished multipart uploads under PREFIX (a killed backup's parts keep costing
        storage until aborted), dated by their last part: a running backup sends one every
        few seconds, so only a dead upload grows old, however long the backup runs."""
        check_prefix(prefix)
        client = self.client()
        found = []
        try:
            uploads = client.get_paginator("list_multipart_uploads")
            for page in uploads.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Uploads", ()):
                    modified, size = item["Initiated"], 0
                    parts = client.get_paginator("list_parts").paginate(
                        Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"]
                    )
                    for part in (part for page in parts for part in page.get("Parts", ())):
                        modified, size = max(modified, part["LastModified"]), size + part["Size"]
                    key = item["Key"][len(self.prefix) :]
                    found.append(Leftover(key, size, modified.astimezone(UTC), item["UploadId"]))
        except Exception as exc:
            raise self.error("list the unfinished uploads under", prefix, exc) from exc
        return found

    def remove_leftover(self, leftover: Leftover) -> None:
        self.abort_upload(leftover.key, leftover.handle)

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort KEY's multipart upload UPLOAD_ID, dropping its parts; one already gone is fine.

        A failed write (S3Upload) and backup.prune's sweep of dead uploads both end here."""
        try:
            self.client().abort_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(key), UploadId=upload_id
            )
        except Exception as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise self.error("abort the multipart upload of", key, exc) from exc

    def part_size_for(self, number: int) -> int:
        """The size of part NUMBER: part_size, doubled every PARTS_PER_STEP parts."""
        doublings = (number - 1) // PARTS_PER_STEP
        return min(self.part_size << doublings, MAX_PART_SIZE)

    @staticmethod
    def lost_create(exc: BaseException) -> bool:
        """Whether S3 refused a conditional create (If-None-Match: *): the key exists, or
        another conditional write of it is completing."""
        return _error_code(exc) in _TAKEN

    def preflight(self) -> None:
        """Write and delete a probe object, with short timeouts but the same retries as every
        other call: a store answering a few 500s while it recovers must not fail a backup
        whose data calls would have retried them."""
        key = PROBE_PREFIX + secrets.token_hex(8)
        client = self.client(fast=True)
        try:
            client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=b"probe\n")
            client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            raise self.error("write a probe object", key, exc) from exc

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def client(self, *, fast: bool = False) -> Any:
        """The boto3 S3 client; FAST gives short timeouts, for preflight.

        Both follow one retry policy: botocore's 'standard' mode (5xx, throttling, timeouts,
        dropped connections, with jittered exponential backoff) for max_attempts attempts.

        Without an endpoint_url option boto3 itself honours AWS_ENDPOINT_URL(_S3); credentials
        come from boto3's usual chain (environment, profile, instance role). Both clients come
        from one session (made and used under the lock: sessions are not thread-safe), which
        parses S3's service model once: a second session would hold another 12 MB.
        """
        with self._lock:
            if fast not in self._clients:
                self._clients[fast] = self._make_client(fast)
            return self._clients[fast]

    def _make_client(self, fast: bool) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            region_name=self._region,
            connect_timeout=2 if fast else 10,
            read_timeout=5 if fast else 60,
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            max_pool_connections=4,
        )
        try:
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client("s3", endpoint_url=self._endpoint_url, config=config)
        except Exception as exc:
            raise self.error("set up the client", "", exc) from exc

    def error(self, action: str, key: str, exc: BaseException) -> StoreError:
        """A StoreError for a failed ACTION on KEY, saying why in words and without secrets."""
        if isinstance(exc, StoreError):
            return exc
        target = f" {key!r}" if key else ""
        return StoreError(mask_text(f"{self.url}: cannot {action}{target}: {_reason(self, exc)}"))


def _reason(store: S3Store, exc: BaseException) -> str:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no usable AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE, or run with an instance role)"
        )
    if isinstance(exc, ClientError):
        code = _error_code(exc)
        if code == "NoSuchBucket":
            return f"bucket {store.bucket!r} does not exist"
        if code in _DENIED or code == "403":
            return f"access denied ({code}); check the credentials and the bucket policy"
        message = exc.response.get("Error", {}).get("Message") or "no message"
        return f"{code}: {message}"
    return str(exc) or type(exc).__name__


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


class _S3Reader(io.RawIOBase):
    """Streams an object's body; a connection dropped mid-object resumes with a Range request
    pinned to the same ETag, so a long restore survives a network blip."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._store = store
        self._key = key
        self._position = 0
        self._etag: str | None = None
        self._body = self._open()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from botocore.exceptions import (
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        for attempt in range(1, self._store.max_attempts + 1):
            try:
                data = self._body.read(len(buffer))
                break
            except (ResponseStreamingError, ReadTimeoutError, IncompleteReadError) as exc:
                self._body.close()
                if attempt == self._store.max_attempts:
                    raise self._store.error("read", self._key, exc) from exc
                self._body = self._open()
            except Exception as exc:
                raise self._store.error("read", self._key, exc) from exc
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()

    def _open(self) -> Any:
        args: dict[str, Any] = {
            "Bucket": self._store.bucket,
            "Key": self._store.object_key(self._key),
        }
        if self._etag is not None:
            args.update(Range=f"bytes={self._position}-", IfMatch=self._etag)
        try:
            response = self._store.client().get_object(**args)
        except Exception as exc:
            if _error_code(exc) in _MISSING:
                raise ObjectNotFound(f"{self._store.url}: no object {self._key!r}") from exc
            raise self._store.error("read", self._key, exc) from exc
        self._etag = response["ETag"]
        return response["Body"]
