"""Bringing a stored backup onto the host that will restore it, checked on the way.

The stored bytes are hashed and counted as they stream from the store, decompressed, and
written to a private file on the host: one download, and the size and sha256 are checked
against the manifest before any restore starts. A seekable file also lets pg_restore work
in parallel (--jobs).

pg_dump wrote the backup through a pipe, so its table of contents lacks the data offsets that
let each pg_restore worker seek straight to its table. The backup recorded them in its
manifest (`data_offsets`); for older backups an OffsetObserver works them out from the bytes
on their way to the host. Once the file is complete and checked, one more round trip writes
the patched table of contents over the start of the file (same length).

A zstd backup is decompressed by the host's own zstd when it has one: a quarter of the bytes
travel, and this side decompresses only the header and TOC (all of it for an older backup,
to find the offsets).
"""

from __future__ import annotations

import hashlib
import io
import shlex
import threading
import uuid
from collections import deque
from collections.abc import Callable

import structlog
import zstandard

from backups.archive.codecs import decompressing_reader
from backups.archive.layout import BackupKey
from backups.archive.manifest import Manifest
from backups.archive.toc import OffsetObserver, Toc
from backups.stores import Store
from maintenance.errors import MaintError
from maintenance.runners import Runner

log = structlog.get_logger()


class IntegrityError(MaintError):
    """The stored object does not match its manifest (corrupt, truncated or replaced)."""


class FetchStopped(MaintError):
    """The caller gave up on the fetch (a restore running beside it failed)."""


class _DigestReader:
    """Hashes and counts what is read through it; raises FetchStopped once STOP is set."""

    def __init__(self, source, stop: threading.Event | None = None) -> None:
        self._source = source
        self._stop = stop
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        if self._stop is not None and self._stop.is_set():
            raise FetchStopped("the download was stopped")
        data = self._source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class _Tap:
    """Hands every non-empty read through it to SEE (an observer, a queue), keeping nothing."""

    def __init__(self, source, see: Callable[[bytes], object]) -> None:
        self._source = source
        self._see = see

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self._see(data)
        return data


class _CompressedTee:
    """Hands on the stored zstd bytes unchanged, for the host to decompress, and decompresses
    them here only while the observer wants to see the archive: as much input is held as the
    decompressor consumed for one read, never the file."""

    def __init__(self, source, observer: OffsetObserver) -> None:
        self._source = source
        self._observer = observer
        self._passed: deque[bytes] = deque()
        self._plain = decompressing_reader("zst", _Tap(source, self._passed.append))
        self._plain_ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._passed and not self._plain_ended and self._observer.wants_more:
            data = self._plain.read(size)
            self._observer.feed(data)
            self._plain_ended = not data
        if self._passed:
            return self._passed.popleft()
        # Past what the decompressor took: bytes after the frame, or all the rest once the
        # observer has what it needs or gave up (no need to decompress twice then).
        return self._source.read(size)


def remote_path(tmp_dir: str, key: BackupKey) -> str:
    return f"{tmp_dir.rstrip('/')}/maint-restore-{uuid.uuid4().hex}.{key.kind}"


def fetch_to_host(
    store: Store,
    key: BackupKey,
    manifest: Manifest,
    runner: Runner,
    path: str,
    *,
    on_toc: Callable[[Toc, bytes | None], None] | None = None,
    pidfile: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Write KEY's decompressed bytes to PATH on the host. Raise IntegrityError on a mismatch.

    ON_TOC is called with the archive's table of contents as soon as it has gone by (and the
    header+TOC with the data offsets filled in, when the manifest has them), and the
    writer's process id is written to PIDFILE: a restore that follows the file as it grows
    (backups.postgres.streamed_restore) starts from the one and watches the other, and
    setting STOP ends the download at its next read.
    The partial file is removed whatever goes wrong; on success the caller removes it.
    """
    host_zstd = manifest.codec == "zst" and runner.run("command -v zstd").ok
    observer = OffsetObserver(known=manifest.offsets(), on_toc=on_toc)
    try:
        with store.open_read(key.key) as raw:
            digest = _DigestReader(raw, stop)
            upload = _upload(manifest.codec, host_zstd, digest, observer)
            try:
                command = _write_command(path, host_zstd, pidfile)
                result = runner.stream(command, stdin=upload)
            except (zstandard.ZstdError, OSError, EOFError) as exc:
                digest.drain()
                _check(key, manifest, digest)
                raise IntegrityError(f"{key.key}: cannot decompress: {exc}") from exc
            digest.drain()
        _check(key, manifest, digest)
        result.check()
        _patch_offsets(observer, runner, path, key)
    except BaseException:
        runner.run(["rm", "-f", path])
        raise


def _write_command(path: str, host_zstd: bool, pidfile: str | None = None) -> str:
    """The host command that writes the private file from its stdin.

    With a PIDFILE the shell writes its process id there and becomes the writer (exec), and
    zstd writes every byte rather than leaving holes for runs of zeros, so that the file's
    size is always how much of it has been written.
    """
    target = shlex.quote(path)
    writer = f"zstd -d -q -o {target}" if host_zstd else f"cat > {target}"
    if pidfile is None:
        return f"umask 077 && {writer}"
    if host_zstd:
        writer = f"zstd -d -q --no-sparse -o {target}"
    return f"umask 077 && echo $$ > {shlex.quote(pidfile)} && exec {writer}"


def _upload(codec: str | None, host_zstd: bool, digest: _DigestReader, observer: OffsetObserver):
    """What to send: the stored bytes for the host's zstd, else the bytes decompressed here."""
    if host_zstd:
        return _CompressedTee(digest, observer)
    return _Tap(decompressing_reader(codec, digest), observer.feed)


def _patch_offsets(observer: OffsetObserver, runner: Runner, path: str, key: BackupKey) -> None:
    """Write the observer's patched table of contents over the start of PATH, if it has one.

    dd with conv=notrunc rewrites those bytes in place; the patch has the original's length.
    """
    toc = observer.patched_toc()
    if toc is None:
        log.debug("data offsets not patched", key=key.key, reason=observer.reason)
        return
    write = f"dd of={shlex.quote(path)} conv=notrunc status=none"
    runner.stream(write, stdin=io.BytesIO(toc)).check()


def _check(key: BackupKey, manifest: Manifest, digest: _DigestReader) -> None:
    if digest.size != manifest.size:
        raise IntegrityError(
            f"{key.key}: size {digest.size} does not match the manifest's {manifest.size}"
            " (truncated or replaced object)"
        )
    if digest.sha256.hexdigest() != manifest.sha256:
        raise IntegrityError(f"{key.key}: sha256 does not match the manifest (corrupt object)")
