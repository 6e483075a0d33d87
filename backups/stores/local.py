"""A store in a local directory (file:///path or a plain path): the embedded default.

Directories are created 0700 and files 0600, since dumps hold every row of a database. A
write goes to a hidden temporary file next to its target and is renamed into place only
once complete and fsynced, so a crash never leaves a file at the key. An exclusive write is
hard-linked into place instead (link() fails if the name exists, rename() would replace it),
so of two writers of one key only the first succeeds.

A dump is flushed to disk while it is written (`_WriteBehind`), so the fsync at the end
waits for the last few MiB, not for the whole file.
"""

from __future__ import annotations

import builtins
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from maintenance.settings.backup import BackupSettings

from .base import (
    Leftover,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    Store,
    StoreError,
    Upload,
    check_key,
    check_prefix,
)

WRITE_BEHIND = 32 * 1024 * 1024  # bytes written between background flushes
# Temporary files of unfinished writes: '.<name>.partial-<random>'.
_PARTIAL = re.compile(r"\..+\.partial-[A-Za-z0-9_]+")


def from_settings(backup: BackupSettings) -> LocalStore:
    """The LocalStore of a 'file:///path' or plain (relative or '~') path store (checked)."""
    url = backup.store_url  # '~' expanded
    path = Path(unquote(urlsplit(url).path)) if "://" in url else Path(url)
    return LocalStore(path.absolute())


class LocalStore(Store):
    """Objects as files under ROOT; the root is created (0700) on first write."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()

    def open_write(self, key: str, *, exclusive: bool = False) -> Upload:
        path = self._path(key)
        try:
            _make_dirs(path.parent)
            fd, partial = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
        except OSError as exc:
            raise _error(f"cannot write {key!r}", exc) from exc
        return _LocalUpload(key, path, Path(partial), os.fdopen(fd, "wb"), exclusive)

    def open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object {key!r} in {self.url}") from exc
        except OSError as exc:
            raise _error(f"cannot read {key!r}", exc) from exc

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        check_prefix(prefix)
        # Walk only the deepest directory the prefix names; the rest of the tree cannot match.
        start = self.root.joinpath(*prefix.split("/")[:-1])
        found = []
        for directory, subdirectories, files in os.walk(start, onerror=self._walk_error):
            subdirectories.sort()
            for name in files:
                if _PARTIAL.fullmatch(name):
                    continue
                path = Path(directory, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and (info := self._info(key, path)) is not None:
                    found.append(info)
        yield from sorted(found, key=lambda info: info.key)

    def stat(self, key: str) -> ObjectInfo | None:
        return self._info(key, self._path(key))

    def leftovers(self, prefix: str = "") -> builtins.list[Leftover]:  # list: a method here
        """Hidden partial files of interrupted writes; their mtime is when they were last
        written to, so a running backup's file always looks young."""
        check_prefix(prefix)
        start = self.root.joinpath(*prefix.split("/")[:-1])
        found = []
        for directory, _, files in os.walk(start, onerror=self._walk_error):
            for name in files:
                path = Path(directory, name)
                key = path.relative_to(self.root).as_posix()
                if _PARTIAL.fullmatch(name) and key.startswith(prefix):
                    try:
                        status = path.stat()
                    except FileNotFoundError:
                        continue  # committed or aborted meanwhile
                    modified = datetime.fromtimestamp(status.st_mtime, UTC)
                    found.append(Leftover(key, status.st_size, modified, str(path)))
        return sorted(found, key=lambda leftover: leftover.key)

    def remove_leftover(self, leftover: Leftover) -> None:
        path = Path(leftover.handle)
        if not _PARTIAL.fullmatch(path.name) or not path.is_relative_to(self.root):
            raise StoreError(f"local store: {leftover.key!r} is not a partial write")
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _error(f"cannot remove {leftover.key!r}", exc) from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except IsADirectoryError:
            return
        except OSError as exc:
            raise _error(f"cannot delete {key!r}", exc) from exc

    def _path(self, key: str) -> Path:
        check_key(key)
        return self.root.joinpath(*key.split("/"))

    def _info(self, key: str, path: Path) -> ObjectInfo | None:
        try:
            status = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _error(f"cannot stat {key!r}", exc) from exc
        if not path.is_file():
            return None
        modified = datetime.fromtimestamp(status.st_mtime, UTC)
        return ObjectInfo(key=key, size=status.st_size, modified=modified)

    def _walk_error(self, exc: OSError) -> None:
        if not isinstance(exc, FileNotFoundError):
            raise _error("cannot list", exc) from exc


class _LocalUpload(Upload):
    """Writes into the temporary file; commit fsyncs it and renames it over the target (or,
    when exclusive, links it to the target and removes the temporary name)."""

    def __init__(
        self, key: str, path: Path, partial: Path, file: BinaryIO, exclusive: bool = False
    ) -> None:
        super().__init__(key)
        self._exclusive = exclusive
        self._path = path
        self._partial = partial
        self._file = file
        self._flusher = _WriteBehind(file)

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._file.write(data)
            self._flusher.wrote(len(data))
        except OSError as exc:
            raise _error(f"cannot write {self.key!r}", exc) from exc

    def _commit(self) -> ObjectInfo:
        try:
            self._flusher.finish()
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._exclusive:
                os.link(self._partial, self._path)
                self._partial.unlink()
            else:
                os.replace(self._partial, self._path)
            _fsync_directory(self._path.parent)
            status = self._path.stat()
        except FileExistsError as exc:
            raise ObjectExists(self._path.parent.as_uri(), self.key) from exc
        except OSError as exc:
            raise _error(f"cannot complete {self.key!r}", exc) from exc
        return ObjectInfo(self.key, status.st_size, datetime.fromtimestamp(status.st_mtime, UTC))

    def _abort(self) -> None:
        try:
            self._flusher.finish(check=False)
            self._file.close()
        finally:
            try:
                self._partial.unlink(missing_ok=True)
            except OSError as exc:
                raise _error(f"cannot remove the unfinished {self.key!r}", exc) from exc


class _WriteBehind:
    """Flushes FILE to disk in a background thread every WRITE_BEHIND bytes.

    Without it the page cache holds the whole dump until commit's fsync, which then stalls
    the backup for as long as the disk needs to write all of it. A background flush error
    is raised by finish(): Linux reports a writeback error to one fsync only, so the commit's
    own fsync might not see it.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None

    def wrote(self, count: int) -> None:
        self._pending += count
        if self._pending < WRITE_BEHIND or (self._thread and self._thread.is_alive()):
            return
        self._raise_error()
        self._file.flush()
        self._pending = 0
        self._thread = threading.Thread(target=self._flush, daemon=True)
        self._thread.start()

    def _flush(self) -> None:
        try:
            os.fdatasync(self._file.fileno())
        except OSError as exc:
            self._error = exc

    def finish(self, check: bool = True) -> None:
        """Wait for a running flush (the file must stay open until then); raise its error."""
        if self._thread is not None:
            self._thread.join()
        if check:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


def _make_dirs(directory: Path) -> None:
    """Create DIRECTORY and its missing parents with mode 0700."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue


def _fsync_directory(directory: Path) -> None:
    """Make a rename in DIRECTORY durable: the new entry survives a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _error(action: str, exc: OSError) -> StoreError:
    """A StoreError for a failed file operation, naming the path and the system's reason."""
    where = f" at {exc.filename}" if exc.filename else ""
    return StoreError(f"local store: {action}{where}: {exc.strerror or exc}")
