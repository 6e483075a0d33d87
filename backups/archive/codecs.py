"""Compression of the stored bytes.

The default is zstd over pg_dump's uncompressed custom format, by the SSH host's own zstd when
it has one (host_compression.py), otherwise here: pg_dump's built-in zlib is single-threaded
and was the bottleneck here (29.7 s against 9.6 s for `-Z0 | zstd -3 -T2` on a 1.4 GB dump, at
a slightly smaller output); bench/backup.py measures it again. `none` keeps a plain
custom-format file that pg_restore can seek (parallel restore). The codec and level a host may
ask for are checked by its settings (settings/backup.py).
"""

from __future__ import annotations

import gzip
from typing import Protocol

import zstandard

from maintenance.streams import Reader, Writer

GZIP_LEVEL = 6
ZSTD_LEVEL = 3
# zstd's multi-threaded default job for level 3 is 8 MiB, and it keeps several jobs' input and
# output alive per thread: about 52 MiB measured here on 300 MB of table-like text. 2 MiB jobs
# held 22 MiB at the same ratio and 5 % more wall time (1 MiB: 16 MiB, 20 % slower), far above
# the rate pg_dump produces; that keeps a backup to S3 under 150 MB.
ZSTD_JOB_SIZE = 2 << 20


class FlushableWriter(Writer, Protocol):
    """A sink gzip accepts: GzipFile.flush() flushes its file object too."""

    def flush(self) -> object: ...


class CompressingWriter(Protocol):
    """What compressing_writer returns: close() ends the compressed stream."""

    def write(self, data: bytes, /) -> int: ...

    def close(self) -> None: ...


class _Passthrough:
    """The `none` codec: bytes go through unchanged."""

    def __init__(self, sink: Writer) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        return len(data)

    def close(self) -> None:
        """Nothing buffered to flush."""


def suffix(codec: str) -> str | None:
    """The key suffix of CODEC: None for uncompressed data."""
    return None if codec == "none" else codec


def compressing_writer(
    codec: str, sink: FlushableWriter, level: int | None = None
) -> CompressingWriter:
    """A writer compressing into SINK; close() flushes the end of the stream, not SINK."""
    if codec == "zst":
        params = zstandard.ZstdCompressionParameters.from_level(
            level or ZSTD_LEVEL, threads=-1, job_size=ZSTD_JOB_SIZE
        )
        compressor = zstandard.ZstdCompressor(compression_params=params)
        # zstandard's stub asks for IO[bytes]; the writer only calls write() (and flush() on
        # its own flush), as its documentation says.
        return compressor.stream_writer(
            sink,  # type: ignore[arg-type]
            closefd=False,
            write_return_read=True,
        )
    if codec == "gz":
        return gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=level or GZIP_LEVEL, mtime=0)
    return _Passthrough(sink)


def zstd_decompressing_writer(sink: Writer) -> CompressingWriter:
    """A writer decompressing zstd into SINK; close() checks nothing is held back."""
    # zstandard's stub asks for IO[bytes]; the writer only calls write(), as documented.
    return zstandard.ZstdDecompressor().stream_writer(
        sink,  # type: ignore[arg-type]
        closefd=False,
        write_return_read=True,
    )


def decompressing_reader(codec: str | None, source: Reader) -> Reader:
    """A reader giving SOURCE's bytes decompressed by CODEC (None or 'none': unchanged)."""
    if codec == "zst":
        # zstandard's stub asks for IO[bytes]; the reader only calls read(), as documented.
        return zstandard.ZstdDecompressor().stream_reader(
            source,  # type: ignore[arg-type]
            closefd=False,
        )
    if codec == "gz":
        # typeshed asks for seek() too; GzipFile only seeks to rewind, and nothing here does.
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[call-overload]
    return source
