"""The two shapes of byte stream the product hands around: something to read from, something to
write to.

Dumps, archives and uploads pass through small adapters (digests, taps, compressors, store
readers) that have only `read` or only `write`; typing them as `BinaryIO` would claim methods
they lack, so runners, codecs and stores accept these protocols instead.
"""

from __future__ import annotations

from typing import Protocol


class Reader(Protocol):
    """Anything with `read(size)`, returning b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class Writer(Protocol):
    """Anything with `write(data)`; the count it returns is not relied on."""

    def write(self, data: bytes, /) -> object: ...
