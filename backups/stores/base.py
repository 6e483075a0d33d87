"""The store interface: where backups live, whatever the backend (local directory, S3, GCS).

Backends implement a handful of primitives (streaming write, streaming read, list, stat,
delete); key layout, manifests and retention live above them. A write is invisible until it
is committed, and an aborted or failed write leaves nothing behind, so a crash mid-dump never
looks like a backup.
"""

from __future__ import annotations

import builtins
import importlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import structlog

from maintenance.errors import ConfigError, MaintError
from maintenance.secrets import mask_text
from maintenance.settings.backup import (  # every rule of a store URL and its options
    SEGMENT_RULE,
    BackupSettings,
    store_settings,
    unsafe_segments,
)

log = structlog.get_logger()

# Scheme -> module holding the backend class; modules import their SDK only when used.
_BACKENDS = {
    "file": "backups.stores.local",
    "s3": "backups.stores.s3",
    "gs": "backups.stores.gcs",
}

PROBE_PREFIX = ".maint-preflight-"


class StoreError(MaintError):
    """A store could not be reached, read or written; the message never holds a credential."""


class ObjectNotFound(StoreError):
    """The object asked for does not exist in the store."""


class ObjectExists(StoreError):
    """An exclusive write found its key taken: someone else created the object first."""

    def __init__(self, where: str, key: str) -> None:
        super().__init__(f"{where}: {key!r} already exists (written by someone else)")
        self.key = key


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: key relative to the store's root, size in bytes, UTC mtime."""

    key: str
    size: int
    modified: datetime


@dataclass(frozen=True)
class Leftover:
    """What an interrupted write left behind (a hidden partial file, an unfinished multipart
    upload): never an object, but it holds storage until removed. `handle` is the backend's
    own reference to it (a path, an upload id)."""

    key: str
    size: int
    modified: datetime
    handle: str


class Upload(ABC):
    """A streaming write of one object. Nothing is visible under `key` until commit().

    Used as a context manager, a clean exit commits and an exception aborts (and is
    re-raised). A write or commit that fails aborts by itself, so the caller never has to
    clean up after an error. Subclasses implement `_write`, `_commit` and `_abort`.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        self.bytes_written = 0
        self.info: ObjectInfo | None = None
        self._state = "open"

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append DATA to the object; return its length. Raise StoreError if the store fails."""
        self._require_open("write to")
        try:
            self._write(data)
        except BaseException as exc:
            self._abort_after(exc)
            raise
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        self.bytes_written += size
        return size

    def commit(self) -> ObjectInfo:
        """Complete the object and return its info. Raise StoreError (after aborting) on failure,
        or if the store then holds a different number of bytes than were written."""
        self._require_open("commit")
        try:
            info = self._commit()
        except BaseException as exc:
            self._abort_after(exc)
            raise
        self._state = "committed"
        self.info = info
        if info.size != self.bytes_written:
            # The object exists but is not what was sent: say so rather than trust it.
            raise StoreError(
                f"{self.key!r} was written with {self.bytes_written} bytes "
                f"but the store holds {info.size}"
            )
        return info

    def abort(self) -> None:
        """Drop the upload so that nothing of it remains; a no-op once committed or aborted.

        Raise StoreError if the backend could not clean up (e.g. the store is unreachable).
        """
        if self._state != "open":
            return
        self._state = "aborted"
        self._abort()

    @property
    def closed(self) -> bool:
        return self._state != "open"

    def __enter__(self) -> Upload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.closed:  # committed or aborted explicitly inside the block
            return
        if exc is None:
            self.commit()
        else:
            self._abort_after(exc)

    def _require_open(self, action: str) -> None:
        if self._state != "open":
            raise StoreError(f"cannot {action} {self.key!r}: the upload was {self._state}")

    def _abort_after(self, error: BaseException) -> None:
        """Abort because of ERROR; a failing cleanup is noted on ERROR, never raised over it."""
        try:
            self.abort()
        except Exception as cleanup:
            message = mask_text(str(cleanup))
            log.warning("store upload cleanup failed", key=self.key, error=message)
            error.add_note(f"cleaning up the unfinished upload also failed: {message}")

    @abstractmethod
    def _write(self, data: bytes | bytearray | memoryview) -> None: ...

    @abstractmethod
    def _commit(self) -> ObjectInfo: ...

    @abstractmethod
    def _abort(self) -> None: ...


class Store(ABC):
    """A place for backup objects, addressed by '/'-separated keys under a root or prefix."""

    url: str  # for display; never contains a secret

    @abstractmethod
    def open_write(self, key: str, *, exclusive: bool = False) -> Upload:
        """Start a streaming write of KEY; see Upload for the commit/abort contract.

        EXCLUSIVE makes commit a conditional create (a local hard link, S3 If-None-Match: *,
        GCS ifGenerationMatch=0): if KEY exists by then, commit aborts and raises
        ObjectExists instead of replacing it, so two writers never both succeed for one key.
        """

    @abstractmethod
    def open_read(self, key: str) -> BinaryIO:
        """Return a streaming reader of KEY. Raise ObjectNotFound if there is no such object."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with PREFIX (recursively), in key order."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Return KEY's info, or None if there is no such object."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete KEY; a missing key is not an error."""

    def leftovers(self, prefix: str = "") -> builtins.list[Leftover]:  # list: a method here
        """Unfinished writes under PREFIX, for backup.prune to remove once old enough. A
        backend whose unfinished writes leave nothing that can be listed returns []."""
        return []

    def remove_leftover(self, leftover: Leftover) -> None:
        """Remove LEFTOVER (see leftovers()); one already gone is not an error."""
        raise StoreError(f"{self.url}: no unfinished writes to remove ({leftover.key!r})")

    def preflight(self) -> None:
        """Check, quickly, that the store is reachable and writable by writing and deleting a
        tiny probe object. Raise StoreError saying what is wrong."""
        key = PROBE_PREFIX + secrets.token_hex(8)
        self.put_bytes(key, b"maint preflight probe\n")
        self.delete(key)

    def put_bytes(self, key: str, data: bytes, *, exclusive: bool = False) -> ObjectInfo:
        """Store DATA under KEY in one go (manifests, small files) and return its info."""
        with self.open_write(key, exclusive=exclusive) as upload:
            upload.write(data)
        assert upload.info is not None
        return upload.info

    def get_bytes(self, key: str) -> bytes:
        """Return the whole content of KEY. Raise ObjectNotFound if it does not exist."""
        with self.open_read(key) as reader:
            return reader.read()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


def check_key(key: str, what: str = "key") -> str:
    """Return KEY if it is a safe relative key: no empty, '.' or '..' segment, no leading '/'.

    Raise ConfigError otherwise (keys are built from host and database names in the
    inventory, and must never reach outside the store's root or prefix).
    """
    if not isinstance(key, str) or not key:
        raise ConfigError(f"invalid store {what} {key!r}: it must be a non-empty string")
    _check_segments(key, key.split("/"), what)
    return key


def check_prefix(prefix: str) -> str:
    """Return PREFIX if it is a safe key prefix ('' and a trailing '/' are allowed)."""
    if prefix:
        segments = prefix.split("/")
        _check_segments(prefix, segments[:-1] if segments[-1] == "" else segments, "prefix")
    return prefix


def _check_segments(text: str, segments: list[str], what: str) -> None:
    if unsafe_segments(segments):
        raise ConfigError(f"invalid store {what} {text!r}: {SEGMENT_RULE}")


def split_bucket_url(url: str) -> tuple[str, str]:
    """Split 'SCHEME://bucket/some/prefix' (checked by the settings) into ('bucket',
    'some/prefix/').

    The prefix comes back with a trailing '/' (or empty), so that a store never sees keys of
    a sibling prefix such as 'some/prefix-old/'.
    """
    parts = urlsplit(url)
    prefix = parts.path.strip("/")
    return parts.netloc, prefix + "/" if prefix else ""


def open_store(url: str, options: Mapping[str, Any] | None = None) -> Store:
    """Return the store for URL: file:///path or a plain path, s3://bucket/prefix or
    gs://bucket/prefix, with the store options of OPTIONS (a `backup` mapping; other keys are
    ignored): a store named on the command line (restore.db --store) or by a test.

    URL and OPTIONS are checked by the rules of an inventory's `backup` (store_settings), and
    nothing is contacted (see Store.preflight). Raise ConfigError naming every problem.
    """
    backup, problems = store_settings(url, options)
    if backup is None:
        raise ConfigError(f"backup store {mask_text(str(url))}: " + "; ".join(problems))
    return open_backup_store(backup)


def open_backup_store(backup: BackupSettings) -> Store:
    """The store of BACKUP, typed settings checked already (at inventory load, or by
    open_store): nothing is checked again, and nothing is contacted."""
    module = importlib.import_module(_BACKENDS[backup.scheme])
    store: Store = module.from_settings(backup)
    return store
