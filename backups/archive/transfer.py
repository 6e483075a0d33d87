"""Running a dump tool on a host straight into a store object, then its manifest, last.

With several stores (copies), the dump is streamed once into all of them at the same time,
and each store's manifest is written once its own object is committed.

Shared by database dumps and globals, so both keep the same guarantees: a tool that fails or
prints nothing aborts the upload (no partial object), and a manifest that cannot be written
takes its data object with it. Both objects are created exclusively: of two runs that picked
the same key (same host, database and second), the second to commit fails and discards its
copy, so a backup never silently replaces another one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from backups.archive.host_compression import compresses_on_host, piped_into_zstd
from backups.archive.layout import BackupKey
from backups.archive.manifest import Manifest
from backups.archive.pipeline import BackupStream, HostCompressedStream, Progress
from backups.stores import ObjectExists, Store
from backups.stores.fanout import Copy, FanOut
from maintenance.errors import MaintError
from maintenance.runners import Runner, shell_command
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


def dump_into_stores(
    runner: Runner,
    command: Sequence[str],
    env: Mapping[str, str],
    stores: Sequence[Store],
    key: BackupKey,
    codec: str,
    level: int | None = None,
) -> tuple[BackupStream, list[Copy]]:
    """Stream COMMAND's stdout once through CODEC (at LEVEL) into KEY in each of STORES (see
    stream_into_stores), compressed on the host when it can (host_compression). Raise
    DumpError if the tool failed."""
    tool = command[0].rsplit("/", 1)[-1]
    on_host = compresses_on_host(runner, codec)
    run = piped_into_zstd(shell_command(command), level) if on_host else command

    def produce(stream: BackupStream) -> None:
        result = runner.stream(run, stdout=stream, env=env)
        if result.exit_code != 0:
            detail = mask_text(result.stderr.strip()) or "no message"
            raise DumpError(f"{tool} exited with status {result.exit_code}: {detail}")

    return stream_into_stores(stores, key, codec, level, produce, tool, on_host)


def stream_into_stores(
    stores: Sequence[Store],
    key: BackupKey,
    codec: str,
    level: int | None,
    produce: Callable[[BackupStream], object],
    tool: str,
    compressed: bool = False,
) -> tuple[BackupStream, list[Copy]]:
    """Have PRODUCE write a dump once into KEY in each of STORES through CODEC: the objects
    are committed only when PRODUCE returns and wrote something; when it raises (a DumpError
    for a failed tool), every upload is aborted and nothing stays. TOOL names the producer;
    COMPRESSED says PRODUCE writes bytes the host already compressed with zstd."""
    try:
        with FanOut(stores, key.key, exclusive=True) as fanout:
            progress = Progress(f"{key.host}/{key.database}")
            stream = (
                HostCompressedStream(fanout, progress)
                if compressed
                else BackupStream(codec, fanout, progress, level)
            )
            produce(stream)
            if stream.raw_size == 0:
                raise DumpError(f"{tool} produced no output")
            stream.finish()
    except ObjectExists as exc:
        raise ConcurrentBackup(key) from exc
    for copy in fanout.copies:
        if isinstance(copy.error, ObjectExists):
            copy.error = ConcurrentBackup(key)
    return stream, fanout.copies


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


def write_manifests(copies: Sequence[Copy], key: BackupKey, manifest: Manifest) -> None:
    """Write the manifest into each store whose copy succeeded; a store where that fails gets
    the error on its copy (and loses its data object), the others keep theirs."""
    for copy in copies:
        if copy.ok:
            try:
                write_manifest(copy.store, key, manifest)
            except MaintError as exc:
                copy.error = exc
