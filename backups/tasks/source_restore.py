"""restore.db for a backup.sources backup: fetched onto the target with its sha256 checked,
then restored by its kind into what `--database` names there (a SQLite file's absolute path,
a Redis RDB's path, a command source's `$MAINT_TARGET`).

A file target that exists is overwritten only with --force; what a command source's
`restore_command` overwrites is its own affair. No safety backup and no restore_checks: those
are PostgreSQL's.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from backups.archive.layout import BackupKey
from backups.archive.manifest import read_manifest
from backups.postgres.fetch import fetch_to_host, remote_path
from backups.sources import Source, host_sources
from backups.stores import Store
from maintenance.errors import ConfigError, MaintError
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.runners import Runner

TASK = "restore.db"
FILE_KINDS = ("sqlite", "redis")  # kinds restoring into a file: --database is its path
log = structlog.get_logger()


def source_of(owner: Host, name: str) -> Source | None:
    """The source of OWNER whose backups are named NAME, if any (else a PostgreSQL backup)."""
    return next((s for s in host_sources(owner) if name in s.units()), None)


def check_into(source: Source, into: str) -> None:
    """Refuse a --database a file kind cannot restore into."""
    if source.kind in FILE_KINDS and not into.startswith("/"):
        raise ConfigError(
            f"--database {into!r}: a {source.kind} backup is restored into a file: give its "
            "absolute path on the target"
        )


def restore_source(
    target: Host,
    runner: Runner,
    source: Source,
    chosen: tuple[BackupKey, Store, str | None],
    into: str,
    *,
    force: bool,
    dry_run: bool,
    confirm: Callable[[list[str]], None],
) -> Result:
    """Restore the CHOSEN backup of SOURCE into INTO on TARGET; CONFIRM asks the user."""
    key, store, resolved = chosen
    occupied = source.occupied(runner, into)
    if occupied and not force:
        raise MaintError(
            f"{into} exists on {target.name}; refusing to overwrite it without --force"
        )
    plan = [*([resolved] if resolved else []),
            f"restore {key.key} ({source.kind} source {source.name!r}, from {store.url}) into "
            f"{into} on {target.name}" + (", overwriting it" if occupied else "")]  # fmt: skip
    if dry_run:
        return Result(
            target.name, Status.SKIPPED, details={"plan": plan}, summary="would " + "; ".join(plan)
        )
    confirm(plan)
    manifest = read_manifest(store, key)
    path = remote_path(target.settings.restore.tmp_dir, key)
    fetch_to_host(store, key, manifest, runner, path)
    try:
        source.restore(runner, key.database, path, into)
    finally:
        runner.run(["rm", "-f", path])
    log.info("source restored", task=TASK, host=target.name, key=key.key, into=into)
    return Result(
        target.name,
        Status.CHANGED,
        details={"key": key.key, "kind": source.kind, "source": source.name, "into": into,
                 "plan": plan},
        summary=f"restored {key.key} into {into}",
    )  # fmt: skip
