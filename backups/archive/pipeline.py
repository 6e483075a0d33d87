"""The byte path of a backup: raw bytes -> counted -> compressed -> hashed and counted -> store.

Each stage writes straight into the next in the chunks the runner hands over, so memory stays
flat whatever the dump size.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from typing import TextIO

import zstandard

from backups.archive.codecs import compressing_writer, zstd_decompressing_writer
from backups.archive.toc import OffsetObserver
from maintenance.errors import MaintError
from maintenance.streams import Writer
from maintenance.units import format_size


class DigestWriter:
    """Hashes and counts the bytes passing to SINK: the figures the manifest records."""

    def __init__(self, sink: Writer) -> None:
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing held here; gzip calls it, and the store's writer flushes when it closes."""


class Progress:
    """A progress line (bytes, rate) on a terminal, at most once a second; silent otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = self.last = time.monotonic()
        self.done = 0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self.last >= 1.0:
            self.last = now
            self.stream.write(f"\r{self.label}: {format_size(self.done)} at {self.rate()}   ")
            self.stream.flush()

    def rate(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{format_size(self.done / elapsed)}/s"

    def finish(self) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.label}: {format_size(self.done)} at {self.rate()}, done\n")
            self.stream.flush()


class BackupStream:
    """The writer handed to the runner: compresses into SINK, hashing the stored bytes."""

    def __init__(
        self, codec: str, sink: Writer, progress: Progress, level: int | None = None
    ) -> None:
        self.stored = DigestWriter(sink)
        self.raw_size = 0
        self.archive = OffsetObserver()  # where each table's data starts, for restores
        self._compressor = compressing_writer(codec, self.stored, level)
        self._progress = progress

    def write(self, data: bytes) -> int:
        self._see_raw(data)
        self._compressor.write(data)
        return len(data)

    def _see_raw(self, data: bytes) -> int:
        self.raw_size += len(data)
        self.archive.feed(data)
        self._progress.advance(len(data))
        return len(data)

    def finish(self) -> None:
        """Flush the compressor's tail into the store; the digest is final afterwards."""
        self._compressor.close()
        self._progress.finish()


class _RawSide:
    """The writer a decompressor hands the raw bytes to."""

    def __init__(self, see: Callable[[bytes], int]) -> None:
        self.write = see


class HostCompressedStream(BackupStream):
    """The writer for a dump the host already compressed with zstd: the bytes are stored as
    they come, and decompressed here only to count them and follow the archive's offsets."""

    def __init__(self, sink: Writer, progress: Progress) -> None:
        super().__init__("none", sink, progress)  # stored unchanged, hashed and counted
        self._plain = zstd_decompressing_writer(_RawSide(self._see_raw))

    def write(self, data: bytes) -> int:
        self._compressor.write(data)
        try:
            self._plain.write(data)
        except zstandard.ZstdError as exc:  # a `zstd` on the host's PATH that is not zstd
            raise MaintError(f"the host's zstd sent bytes that do not decompress: {exc}") from exc
        return len(data)

    def finish(self) -> None:
        self._plain.close()
        super().finish()
