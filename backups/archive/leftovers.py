"""What interrupted backups leave in a store: hidden partial files, unfinished multipart uploads.

backup.prune sweeps them under the host's own prefix once older than `incomplete_grace`: a
running backup's partial write looks exactly like a dead one's, only younger (a local partial
file's age counts from its last write, an S3 upload's from its start, so the grace must exceed
the longest backup).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from backups.archive.layout import host_prefix
from backups.stores import Store

log = structlog.get_logger()


def sweep_leftovers(
    store: Store, host: str, grace: timedelta, *, dry_run: bool, now: datetime
) -> list[dict[str, Any]]:
    """Remove (or, on a dry run, only list) HOST's leftovers older than GRACE."""
    stale = [
        leftover
        for leftover in store.leftovers(host_prefix(host))
        if now - leftover.modified > grace
    ]
    for leftover in stale:
        if not dry_run:
            store.remove_leftover(leftover)
        log.info("unfinished write removed" if not dry_run else "unfinished write found",
                 task="backup.prune", host=host, key=leftover.key, dry_run=dry_run)  # fmt: skip
    return [
        {"key": leftover.key, "size": leftover.size, "since": leftover.modified.isoformat()}
        for leftover in stale
    ]
