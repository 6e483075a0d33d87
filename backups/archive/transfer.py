"""Running a dump tool on a host straight into a store object, then its manifest, last.

Shared by database dumps and globals, so both keep the same guarantees: a tool that fails or
prints nothing aborts the upload (no partial object), and a manifest that cannot be written
takes its data object with it. Both objects are created exclusively: of two runs that picked
the same key (same host, database and second), the second to commit fails and discards its
copy, so a backup never silently replaces another one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from backups.archive.layout import BackupKey
from backups.archive.manifest import Manifest
from backups.archive.pipeline import BackupStream, Progress
from backups.stores import ObjectExists, Store
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.secrets import mask_text


class DumpError(MaintError):
    """A dump tool failed or produced nothing usable."""


class ConcurrentBackup(MaintError):
    """Another run stored a backup under the same key first; this run's copy was discarded."""

    def __init__(self, key: BackupKey) -> None:
        super().__init__(
            f"another backup of {key.host}/{key.database} is in progress: it stored "
            f"{key.key} first, so this run's copy was discarded"
        )


def dump_into_store(
    runner: Runner,
    command: Sequence[str],
    env: Mapping[str, str],
    store: Store,
    key: BackupKey,
    codec: str,
    level: int | None = None,
) -> BackupStream:
    """Stream COMMAND's stdout through CODEC (at LEVEL) into KEY. Raise DumpError if the tool
    failed."""
    tool = command[0].rsplit("/", 1)[-1]
    try:
        with store.open_write(key.key, exclusive=True) as upload:
            progress = Progress(f"{key.host}/{key.database}")
            stream = BackupStream(codec, upload, progress, level)
            result = runner.stream(command, stdout=stream, env=env)
            if result.exit_code != 0:
                detail = mask_text(result.stderr.strip()) or "no message"
                raise DumpError(f"{tool} exited with status {result.exit_code}: {detail}")
            if stream.raw_size == 0:
                raise DumpError(f"{tool} produced no output")
            stream.finish()
    except ObjectExists as exc:
        raise ConcurrentBackup(key) from exc
    return stream


def write_manifest(store: Store, key: BackupKey, manifest: Manifest) -> None:
    """Write the manifest last; if that fails, remove the data object so nothing half-done stays."""
    try:
        store.put_bytes(key.manifest_key, manifest.to_json(), exclusive=True)
    except ObjectExists as exc:
        store.delete(key.key)
        raise ConcurrentBackup(key) from exc
    except MaintError:
        store.delete(key.key)
        raise
