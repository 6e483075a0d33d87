"""Writing one object to S3: a single PutObject when it fits in a part, else a multipart upload
with at most two part buffers alive, one filling and one going up on a worker thread.

Kept apart from s3.py, which is the store (client, listing, reading, errors, the part-size
schedule): this is only the buffering and threading of one write. It reaches S3 through its
S3Store, never on its own, so every call shares the store's client and retry policy.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .base import ObjectExists, ObjectInfo, StoreError, Upload

if TYPE_CHECKING:
    from .s3 import S3Store

MAX_PARTS = 10_000  # S3's limit for one object


class S3Upload(Upload):
    """One object: a single PutObject when it fits in a part, else a multipart upload."""

    def __init__(self, store: S3Store, key: str, exclusive: bool = False) -> None:
        super().__init__(key)
        self._store = store
        self._condition = {"IfNoneMatch": "*"} if exclusive else {}
        self._object_key = store.object_key(key)
        self._buffer = bytearray()  # the part being filled: allocated whole, filled in place
        self._filled = 0
        self._spare: bytearray | None = None  # the last part sent, back for reuse
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: Future[tuple[dict[str, Any], bytearray]] | None = None
        self._worker: ThreadPoolExecutor | None = None

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            buffer = self._part_buffer()
            piece = view[: len(buffer) - self._filled]
            buffer[self._filled : self._filled + len(piece)] = piece
            self._filled += len(piece)
            view = view[len(piece) :]
            if self._filled == len(buffer):
                self._send_part()

    def _part_buffer(self) -> bytearray:
        """The buffer of the part being filled. Two buffers of the part size serve a whole
        upload in turn: growing a fresh one for every part left the allocator holding
        freed pieces, about 8 MB more at peak (backup over SSH into S3)."""
        if not self._buffer:
            size = self._store.part_size_for(len(self._parts) + 1 + (self._in_flight is not None))
            spare, self._spare = self._spare, None
            self._buffer = spare if spare is not None and len(spare) == size else bytearray(size)
        return self._buffer

    def _filled_part(self) -> bytearray:
        """The part being filled, cut to its contents (only the last part is ever short)."""
        del self._buffer[self._filled :]
        return self._buffer

    def _commit(self) -> ObjectInfo:
        client = self._store.client()
        try:
            if self._upload_id is None:
                client.put_object(
                    Bucket=self._store.bucket,
                    Key=self._object_key,
                    Body=self._filled_part(),
                    **self._condition,
                    **self._store.upload_args,
                )
            else:
                if self._filled:
                    self._send_part()
                self._wait_for_part()
                client.complete_multipart_upload(
                    Bucket=self._store.bucket,
                    Key=self._object_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                    **self._condition,
                )
                self._stop_worker()
        except Exception as exc:
            if self._condition and self._store.lost_create(exc):
                raise ObjectExists(self._store.url, self.key) from exc
            raise self._store.error("upload", self.key, exc) from exc
        self._buffer, self._filled, self._spare = bytearray(), 0, None
        info = self._store.stat(self.key)
        if info is None:
            raise StoreError(f"{self._store.url}: {self.key!r} is missing after its upload")
        return info

    def _abort(self) -> None:
        self._buffer, self._filled, self._spare = bytearray(), 0, None
        self._stop_worker()
        if self._upload_id is not None:
            self._store.abort_upload(self.key, self._upload_id)

    def _send_part(self) -> None:
        """Hand the full buffer to the worker, after the part before it has gone up."""
        client = self._store.client()
        if self._upload_id is None:
            try:
                created = client.create_multipart_upload(
                    Bucket=self._store.bucket,
                    Key=self._object_key,
                    **self._checksum_args(),
                    **self._store.upload_args,
                )
            except Exception as exc:
                raise self._store.error("start uploading", self.key, exc) from exc
            self._upload_id = created["UploadId"]
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s3-part")
        self._wait_for_part()
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise StoreError(
                f"{self._store.url}: {self.key!r} needs more than {MAX_PARTS} parts "
                f"starting at {self._store.part_size} bytes; raise the part_size option"
            )
        assert self._worker is not None
        part = self._filled_part()
        self._buffer, self._filled = bytearray(), 0
        self._in_flight = self._worker.submit(self._upload_part, number, [part])

    def _upload_part(
        self, number: int, holder: list[bytearray]
    ) -> tuple[dict[str, Any], bytearray]:
        """Upload one part (in the worker thread); return its entry for the completion and
        its buffer, to be filled again.

        The part is taken out of HOLDER so that a failed part is freed at once: the executor
        drops its arguments only later, and meanwhile another part could be filling up.
        """
        buffer = holder.pop()
        try:
            response = self._store.client().upload_part(
                Bucket=self._store.bucket,
                Key=self._object_key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=buffer,
                **self._checksum_args(),
            )
        except Exception as exc:
            raise self._store.error(f"upload part {number} of", self.key, exc) from exc
        part = {"PartNumber": number, "ETag": response["ETag"]}
        part.update(
            {name: value for name, value in response.items() if name.startswith("Checksum")}
        )
        return part, buffer

    def _wait_for_part(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            part, self._spare = in_flight.result()
            self._parts.append(part)

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None
        self._in_flight = None

    def _checksum_args(self) -> dict[str, str]:
        """Ask for CRC32 part checksums unless the configuration turned checksums off.

        As boto3's own transfer manager does: AWS_REQUEST_CHECKSUM_CALCULATION=when_required
        keeps S3-compatible services that reject the checksum headers working.
        """
        if self._store.client().meta.config.request_checksum_calculation == "when_supported":
            return {"ChecksumAlgorithm": "CRC32"}
        return {}
