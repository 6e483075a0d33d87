"""One stream written to several stores at once: the copies of a backup (`backup.store` a list).

Each store's upload runs on its own thread behind a bounded queue of chunks, so the dump is
read, compressed and hashed once, and memory stays flat: at most LANE_DEPTH chunks wait per
store, besides what each upload buffers itself (an S3 part, a GCS chunk). A slow store fills
its queue and the writer waits for it: the slowest store sets the pace, and never makes
another fail. A store whose write fails drops out (its upload aborted by Upload itself, so no
partial object stays) and the others go on; only when every store has failed does writing
raise, which stops the dump.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from maintenance.secrets import mask_text

from .base import ObjectInfo, Store, StoreError, Upload

LANE_DEPTH = 8  # chunks queued per store: a few MB at most, whatever the dump size

_END = b""  # the upload is complete: commit it (a real chunk is never empty)


@dataclass
class Copy:
    """One store's share of a fan-out write: its object, or the error that ended it."""

    store: Store
    info: ObjectInfo | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, str]:
        """This store's part of a backup as reports show it (--json): ok, or failed and why."""
        if self.ok:
            return {"store": self.store.url, "status": "ok"}
        return {"store": self.store.url, "status": "failed", "error": mask_text(str(self.error))}


@dataclass
class _Lane:
    """The thread feeding one store's upload from its queue."""

    copy: Copy
    upload: Upload
    chunks: queue.Queue[bytes] = field(default_factory=lambda: queue.Queue(LANE_DEPTH))
    cancelled: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"copy {self.copy.store.url}")
        self.thread.start()

    def _run(self) -> None:
        ended = False
        try:
            while not (ended := (chunk := self.chunks.get()) is _END):
                if self.cancelled.is_set():
                    break
                self.upload.write(chunk)
            if not self.cancelled.is_set():
                self.copy.info = self.upload.commit()
                return
        except BaseException as exc:  # reported per store by the caller
            self.copy.error = exc
        self._abort()
        while not ended:  # keep emptying the queue: the writer never waits on a stopped store
            ended = self.chunks.get() is _END

    def _abort(self) -> None:
        """Abort the upload if still open (a failed write or commit aborted it already)."""
        try:
            self.upload.abort()
        except BaseException as exc:
            if self.copy.error is None:
                self.copy.error = exc


class FanOut:
    """A writer whose bytes go to an upload in each of several stores (see the module doc).

    Used as a context manager: a clean exit commits every upload still going, an exception
    aborts them all. `copies` then says, per store, what happened.
    """

    def __init__(self, stores: Sequence[Store], key: str, *, exclusive: bool = False) -> None:
        self.copies = [Copy(store) for store in stores]
        self._lanes: list[_Lane] = []
        try:
            for copy in self.copies:
                self._lanes.append(_Lane(copy, copy.store.open_write(key, exclusive=exclusive)))
        except BaseException:
            for lane in self._lanes:
                lane.upload.abort()
            raise
        for lane in self._lanes:
            lane.start()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue DATA for every store still writing; raise StoreError once none is."""
        chunk = bytes(data)
        if not chunk:
            return 0
        live = [lane for lane in self._lanes if lane.copy.ok]
        if not live:
            raise self._all_failed()
        for lane in live:
            lane.chunks.put(chunk)
        return len(chunk)

    def __enter__(self) -> FanOut:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, traceback: object) -> None:
        if exc is not None:
            for lane in self._lanes:
                lane.cancelled.set()
        for lane in self._lanes:
            lane.chunks.put(_END)
        for lane in self._lanes:
            assert lane.thread is not None
            lane.thread.join()
        if exc is None and not any(copy.ok for copy in self.copies):
            raise self._all_failed()

    def _all_failed(self) -> BaseException:
        """The error to stop on: the store's own for a single store, else one naming each."""
        if len(self.copies) == 1 and self.copies[0].error is not None:
            return self.copies[0].error
        return StoreError(
            "every store failed: "
            + "; ".join(f"{copy.store.url}: {copy.error}" for copy in self.copies)
        )
