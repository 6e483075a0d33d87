"""Data offsets for pg_dump custom-format archives that were written through a pipe.

pg_dump records where each table's data starts in the archive's table of contents only when
it can seek back over its output; a backup streams `pg_dump -Fc` through a pipe, so every
entry says "offset not set" and each `pg_restore --jobs` worker has to read through the data
blocks to find its table (1.25x slower here). The fetch already passes every byte of the dump
on its way to the host: OffsetObserver follows the archive's structure as it goes by, keeping
only the header and TOC bytes (small) and one offset per data block (flat memory), and gives
back the header+TOC with the offsets filled in, ready to overwrite the start of the file (same
length, nothing else moves).

The layout is pg_dump's (src/bin/pg_dump/pg_backup_archiver.c: WriteHead, WriteToc, ReadInt,
ReadStr, WriteOffset; pg_backup_custom.c: _StartData, _CustomWriteFunc, _EndData, _StartLOs,
_EndLOs), archive versions 1.12 (PostgreSQL 9.0) to 1.16 (17). Anything else, or any byte
out of place, turns the observer off: the file stays a valid archive, only slower to restore
in parallel, so the observer never raises into the fetch.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
BLK_DATA = 1
BLK_BLOBS = 3
K_OFFSET_POS_NOT_SET = 1
K_OFFSET_POS_SET = 2
K_OFFSET_NO_DATA = 3
# teSection (pg_backup.h): where pg_restore's --section puts an entry.
SECTION_NONE, SECTION_PRE_DATA, SECTION_DATA, SECTION_POST_DATA = 1, 2, 3, 4
OFFSET_FLAGS = (K_OFFSET_POS_NOT_SET, K_OFFSET_POS_SET, K_OFFSET_NO_DATA)
OLDEST, NEWEST = (1, 12), (1, 16)
# Versions that added fields to the header or to each TOC entry.
V_TABLEAM, V_COMPRESSION_ALGORITHM, V_RELKIND = (1, 14), (1, 15), (1, 16)
# The header and TOC are kilobytes to a few megabytes even for tens of thousands of tables;
# past this the observer gives up rather than hold more memory.
MAX_TOC_BYTES = 64 * 1024 * 1024
_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


class ArchiveError(ValueError):
    """The bytes are not a custom-format archive this module understands."""


class _Incomplete(Exception):
    """The buffer ends before the header and TOC do: wait for more bytes."""


@dataclass(frozen=True)
class TocEntry:
    """What the offset patch needs of one TOC entry; `offset_at` is where its flag byte is.

    Its schema (`namespace`) and the entries it depends on tell a restore of some tables
    which indexes, constraints and sequences go with them (backups.postgres.table_list), and
    with its section they tell a drill what may run before which data has arrived
    (backups.postgres.restore_units).
    """

    dump_id: int
    desc: str
    tag: str
    flag: int
    offset: int
    offset_at: int
    namespace: str = ""
    dependencies: tuple[int, ...] = ()
    section: int = SECTION_NONE


@dataclass(frozen=True)
class Toc:
    """An archive's header facts and TOC entries; `end` is the length of header+TOC bytes."""

    version: tuple[int, int, int]
    int_size: int
    off_size: int
    entries: tuple[TocEntry, ...]
    end: int


class _Cursor:
    """Reads pg_dump's primitive types from a buffer; `_Incomplete` when it runs out."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.pos = 0
        self.int_size = 4

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise _Incomplete
        chunk = bytes(self.data[self.pos : end])
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def integer(self) -> int:
        """ReadInt: a sign byte, then int_size bytes little-endian."""
        sign = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def string(self) -> str | None:
        """ReadStr: an int length (negative: NULL), then that many bytes."""
        length = self.integer()
        if length < 0:
            return None
        if length > MAX_TOC_BYTES:
            raise ArchiveError(f"string of {length} bytes in the TOC")
        return self.take(length).decode("utf-8", errors="replace")


def parse_toc(data: bytes | bytearray) -> Toc:
    """The header and TOC at the start of DATA.

    Raise ArchiveError for anything but a custom-format archive of a supported version, and
    _Incomplete (private) when DATA stops before the TOC does.
    """
    cursor = _Cursor(data)
    version, off_size = _parse_header(cursor)
    count = cursor.integer()
    if count < 0:
        raise ArchiveError(f"TOC count {count}")
    entries = tuple(_parse_entry(cursor, version, off_size) for _ in range(count))
    return Toc(version, cursor.int_size, off_size, entries, cursor.pos)


def toc_if_complete(data: bytes | bytearray) -> Toc | None:
    """The header and TOC at the start of DATA, or None when DATA stops before they end.
    Raise ArchiveError for anything but a custom-format archive of a supported version."""
    try:
        return parse_toc(data)
    except _Incomplete:
        return None


def _parse_header(cursor: _Cursor) -> tuple[tuple[int, int, int], int]:
    """WriteHead's fields; return the version and the size of file offsets."""
    if cursor.take(len(MAGIC)) != MAGIC:
        raise ArchiveError("not a pg_dump archive (no PGDMP magic)")
    version = (cursor.byte(), cursor.byte(), cursor.byte())
    if not OLDEST <= version[:2] <= NEWEST:
        raise ArchiveError(f"unsupported archive version {'.'.join(map(str, version))}")
    cursor.int_size = cursor.byte()
    off_size = cursor.byte()
    if cursor.int_size not in _INT_CODES or not 1 <= off_size <= 8:
        raise ArchiveError(f"unsupported int size {cursor.int_size} or offset size {off_size}")
    archive_format = cursor.byte()
    if archive_format != FORMAT_CUSTOM:
        raise ArchiveError(f"archive format {archive_format} is not custom ({FORMAT_CUSTOM})")
    if version[:2] >= V_COMPRESSION_ALGORITHM:
        cursor.byte()
    else:
        cursor.integer()
    for _ in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
        cursor.integer()
    for _ in range(3):  # database name, server version, pg_dump version
        cursor.string()
    return version, off_size


def _parse_entry(cursor: _Cursor, version: tuple[int, int, int], off_size: int) -> TocEntry:
    """WriteToc's fields of one entry, then the custom format's WriteOffset."""
    dump_id = cursor.integer()
    if dump_id <= 0:
        raise ArchiveError(f"TOC entry ID {dump_id} out of range")
    cursor.integer()  # hadDumper
    cursor.string()  # tableoid
    cursor.string()  # oid
    tag = cursor.string() or ""
    desc = cursor.string() or ""
    section = cursor.integer()
    for _ in range(3):  # defn, dropStmt, copyStmt
        cursor.string()
    namespace = cursor.string() or ""
    cursor.string()  # tablespace
    if version[:2] >= V_TABLEAM:
        cursor.string()
    if version[:2] >= V_RELKIND:
        cursor.integer()
    cursor.string()  # owner
    cursor.string()  # "false": tables WITH OIDS
    dependencies = []
    while (dependency := cursor.string()) is not None:  # ended by a NULL string
        dependencies.append(int(dependency))
    offset_at = cursor.pos
    flag = cursor.byte()
    if flag not in OFFSET_FLAGS:
        raise ArchiveError(f"TOC entry {dump_id}: data offset flag {flag}")
    offset = int.from_bytes(cursor.take(off_size), "little")
    return TocEntry(
        dump_id, desc, tag, flag, offset, offset_at, namespace, tuple(dependencies), section
    )


# What the block walker expects next.
_BLOCK, _CHUNK, _OID = "block header", "chunk length", "large object OID"


class _BlockWalker:
    """Follows the data blocks after the TOC and records where each one starts.

    A block is a type byte (BLK_DATA or BLK_BLOBS) and the entry's dumpId; table data is then
    a list of chunks, each an int length and that many bytes, ended by a zero length; large
    objects are a list of (OID, chunk list), ended by a zero OID. Only the few bytes of a
    header split between two reads are kept, never the data.
    """

    def __init__(self, int_size: int, data_ids: set[int], start: int) -> None:
        self._int = struct.Struct("<B" + _INT_CODES[int_size])
        self._data_ids = data_ids
        self._state = _BLOCK
        self._after_chunks = _BLOCK
        self._carry = b""
        self._skip = 0
        self._fed = start
        self.offsets: dict[int, int] = {}

    @property
    def complete(self) -> bool:
        """The bytes so far end exactly between two blocks, as a whole archive does."""
        return self._state == _BLOCK and not self._carry and not self._skip

    def feed(self, data: bytes) -> None:
        if self._skip >= len(data):
            self._skip -= len(data)
            self._fed += len(data)
            return
        buffer = self._carry + data if self._carry else data
        base = self._fed - len(self._carry)
        self._fed += len(data)
        pos = self._walk(buffer, self._skip, base)
        self._skip = max(pos - len(buffer), 0)
        self._carry = buffer[pos:]

    def _walk(self, buffer: bytes, pos: int, base: int) -> int:
        """Consume BUFFER from POS; return where the next unread field starts (may be past
        the end, inside a chunk's bytes)."""
        size = self._int.size
        end = len(buffer)
        while True:
            if self._state == _CHUNK:
                pos = self._skip_chunks(buffer, pos, end)
                if self._state == _CHUNK:
                    return pos
            elif self._state == _BLOCK:
                if pos + 1 + size > end:
                    return pos
                self._block_header(buffer, pos, base)
                pos += 1 + size
            else:
                if pos + size > end:
                    return pos
                self._large_object(buffer, pos)
                pos += size

    def _skip_chunks(self, buffer: bytes, pos: int, end: int) -> int:
        """The hot loop: an uncompressed dump has one chunk per row, so the loop tests one
        condition per chunk and sorts out a sign or the end marker only once it stops."""
        unpack = self._int.unpack_from
        size = self._int.size
        last = end - size  # where the last whole length field of BUFFER can start
        while pos <= last:
            sign, length = unpack(buffer, pos)
            if sign or not length:
                if sign:
                    raise ArchiveError(f"negative chunk length at {pos}")
                self._state = self._after_chunks
                return pos + size
            pos += size + length
        return pos

    def _block_header(self, buffer: bytes, pos: int, base: int) -> None:
        block_type = buffer[pos]
        sign, dump_id = self._int.unpack_from(buffer, pos + 1)
        if block_type not in (BLK_DATA, BLK_BLOBS):
            raise ArchiveError(f"data block type {block_type} at {base + pos}")
        if sign or dump_id not in self._data_ids or dump_id in self.offsets:
            raise ArchiveError(f"unexpected data block ID {dump_id} at {base + pos}")
        self.offsets[dump_id] = base + pos
        self._state = _CHUNK if block_type == BLK_DATA else _OID
        self._after_chunks = _BLOCK

    def _large_object(self, buffer: bytes, pos: int) -> None:
        sign, oid = self._int.unpack_from(buffer, pos)
        if sign:
            raise ArchiveError(f"negative large object OID at {pos}")
        self._state = _CHUNK if oid else _BLOCK
        self._after_chunks = _OID


class OffsetObserver:
    """Watches a custom-format archive stream go by and fills in its TOC's data offsets.

    Feed it every byte in order; after the last, `patched_toc()` gives the header+TOC bytes
    to write over the start of the file, or None (with `reason` saying why) when there is
    nothing to patch or the stream was not an archive it could follow.

    A backup records the offsets it observed in its manifest (`offsets()`); given those
    (KNOWN), the observer needs only the header and TOC, and `wants_more` turns False as soon
    as they have gone by, so a restore need not decompress the rest to find them again.
    ON_TOC hears of the table of contents once, as soon as it has gone by, with the patched
    header+TOC when the offsets are KNOWN.
    """

    def __init__(
        self,
        known: Mapping[int, int] | None = None,
        on_toc: Callable[[Toc, bytes | None], None] | None = None,
    ) -> None:
        self._on_toc = on_toc
        self._head = bytearray()
        self._retry_at = 0
        self._toc: Toc | None = None
        self._walker: _BlockWalker | None = None
        self._known = dict(known) if known else None
        self.reason: str | None = None

    @property
    def wants_more(self) -> bool:
        """Whether more of the stream can still change the outcome."""
        return self.reason is None and not (self._known is not None and self._toc is not None)

    def offsets(self) -> dict[int, int] | None:
        """Each data block's offset, once the whole stream went by; None if not followed."""
        if self._walker is None and self.reason is None and self._head:
            self._retry_at = 0  # a small archive may have ended before the next retry point
            self._feed_head(b"")
        if self.reason is not None:
            return None
        if self._walker is None or self._toc is None:
            self._stop("the stream ended inside the header or table of contents")
            return None
        if not self._walker.complete:
            self._stop("the stream ended inside a data block")
            return None
        return dict(self._walker.offsets)

    def feed(self, data: bytes) -> None:
        """Observe the next bytes of the stream. Never raises: a problem turns it off."""
        if not data or not self.wants_more:
            return
        try:
            if self._walker is None and self._toc is None:
                self._feed_head(data)
                if self._toc is not None and self._on_toc is not None:
                    self._on_toc(self._toc, self.patched_toc() if self._known else None)
            elif self._walker is not None:
                self._walker.feed(data)
        except Exception as exc:  # a parser bug must not fail a download: just stop patching
            self._stop(f"{type(exc).__name__}: {exc}")

    def _feed_head(self, data: bytes) -> None:
        """Collect bytes until the TOC parses; retry only once the buffer doubled, so a large
        TOC arriving in many reads is parsed a few times, not once per read."""
        self._head += data
        if len(self._head) < self._retry_at:
            return
        try:
            self._toc = parse_toc(self._head)
        except _Incomplete:
            if len(self._head) > MAX_TOC_BYTES:
                self._stop(f"table of contents larger than {MAX_TOC_BYTES} bytes")
            else:
                self._retry_at = 2 * len(self._head)
            return
        rest = bytes(self._head[self._toc.end :])
        del self._head[self._toc.end :]
        if self._known is not None:
            return
        data_ids = {e.dump_id for e in self._toc.entries if e.flag != K_OFFSET_NO_DATA}
        self._walker = _BlockWalker(self._toc.int_size, data_ids, self._toc.end)
        self._walker.feed(rest)

    def _stop(self, reason: str) -> None:
        self.reason = reason
        self._head = bytearray()
        self._walker = None

    def patched_toc(self) -> bytes | None:
        """The header+TOC with every data block's offset set, once the stream ended."""
        offsets: dict[int, int] | None
        if self._known is not None and self._toc is not None and self.reason is None:
            offsets = self._known
        else:
            offsets = self.offsets()
        if offsets is None or self._toc is None:
            return None
        if self._known is not None and set(offsets) - {e.dump_id for e in self._toc.entries}:
            self._stop("the recorded offsets name blocks this archive does not have")
            return None
        if max(offsets.values(), default=0) >> (8 * self._toc.off_size):
            self._stop(f"an offset does not fit the archive's {self._toc.off_size} bytes")
            return None
        patched = bytearray(self._head)
        for entry in self._toc.entries:
            offset = offsets.get(entry.dump_id)
            if offset is not None:
                patched[entry.offset_at] = K_OFFSET_POS_SET
                field = slice(entry.offset_at + 1, entry.offset_at + 1 + self._toc.off_size)
                patched[field] = offset.to_bytes(self._toc.off_size, "little")
        if patched == self._head:
            self._stop("nothing to fill in: no data blocks, or their offsets are already set")
            return None
        return bytes(patched)
