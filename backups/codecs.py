"""Compression of the stored bytes.

The default is zstd on the control machine over pg_dump's uncompressed custom format: pg_dump's
built-in zlib is single-threaded and was the bottleneck here (29.7 s against 9.6 s for
`-Z0 | zstd -3 -T2` on a 1.4 GB dump, at a slightly smaller output); bench/backup.py measures it
again. `none` keeps a plain custom-format file that pg_restore can seek (parallel restore).
"""

from __future__ import annotations

import gzip
from typing import BinaryIO, Protocol

import zstandard

from maintenance.errors import ConfigError

DEFAULT_CODEC = "zst"
CODECS = ("zst", "gz", "none")
ZSTD_LEVEL = 3


class Writer(Protocol):
    def write(self, data: bytes) -> int: ...


class _Passthrough:
    """The `none` codec: bytes go through unchanged."""

    def __init__(self, sink: Writer) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        return self._sink.write(data)

    def close(self) -> None:
        """Nothing buffered to flush."""


def check_codec(codec: str) -> str:
    if codec not in CODECS:
        raise ConfigError(f"codec {codec!r} is not one of {', '.join(CODECS)}")
    return codec


def suffix(codec: str) -> str | None:
    """The key suffix of CODEC: None for uncompressed data."""
    return None if codec == "none" else codec


def compressing_writer(codec: str, sink: Writer):
    """A writer compressing into SINK; close() flushes the end of the stream, not SINK."""
    if codec == "zst":
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL, threads=-1)
        return compressor.stream_writer(sink, closefd=False, write_return_read=True)
    if codec == "gz":
        return gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0)
    return _Passthrough(sink)


def decompressing_reader(codec: str | None, source: BinaryIO) -> BinaryIO:
    """A reader giving SOURCE's bytes decompressed by CODEC (None or 'none': unchanged)."""
    if codec == "zst":
        return zstandard.ZstdDecompressor().stream_reader(source, closefd=False)
    if codec == "gz":
        return gzip.GzipFile(fileobj=source, mode="rb")
    return source
