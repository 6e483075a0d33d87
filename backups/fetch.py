"""Bringing a stored backup onto the host that will restore it, checked on the way.

The stored bytes are hashed and counted as they stream from the store, decompressed, and
written to a private file on the host: one download, and the size and sha256 are checked
against the manifest before any restore starts. A seekable file also lets pg_restore work
in parallel (--jobs).
"""

from __future__ import annotations

import hashlib
import shlex
import uuid

import zstandard

from maintenance.errors import MaintError
from maintenance.runners import Runner

from .codecs import decompressing_reader
from .layout import BackupKey
from .manifest import Manifest
from .stores import Store


class IntegrityError(MaintError):
    """The stored object does not match its manifest (corrupt, truncated or replaced)."""


class _DigestReader:
    """Hashes and counts what is read through it."""

    def __init__(self, source) -> None:
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def remote_path(tmp_dir: str, key: BackupKey) -> str:
    return f"{tmp_dir.rstrip('/')}/maint-restore-{uuid.uuid4().hex}.{key.kind}"


def fetch_to_host(
    store: Store, key: BackupKey, manifest: Manifest, runner: Runner, path: str
) -> None:
    """Write KEY's decompressed bytes to PATH on the host. Raise IntegrityError on a mismatch.

    The partial file is removed whatever goes wrong; on success the caller removes it.
    """
    write = f"umask 077 && cat > {shlex.quote(path)}"
    try:
        with store.open_read(key.key) as raw:
            digest = _DigestReader(raw)
            try:
                result = runner.stream(write, stdin=decompressing_reader(manifest.codec, digest))
            except (zstandard.ZstdError, OSError, EOFError) as exc:
                digest.drain()
                _check(key, manifest, digest)
                raise IntegrityError(f"{key.key}: cannot decompress: {exc}") from exc
            digest.drain()
        _check(key, manifest, digest)
        result.check()
    except BaseException:
        runner.run(["rm", "-f", path])
        raise


def _check(key: BackupKey, manifest: Manifest, digest: _DigestReader) -> None:
    if digest.size != manifest.size:
        raise IntegrityError(
            f"{key.key}: size {digest.size} does not match the manifest's {manifest.size}"
            " (truncated or replaced object)"
        )
    if digest.sha256.hexdigest() != manifest.sha256:
        raise IntegrityError(f"{key.key}: sha256 does not match the manifest (corrupt object)")
