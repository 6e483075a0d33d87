"""restore.db --force's safety backup: the target database as it was, kept before it is overwritten.

It is taken by backup.db's own procedure (same dump, manifest, checksums and stores), under its
own name, `<database>~safety`, so it is recognisable in backup.list, never taken for the
database's nightly backup by `latest`, freshness or retention of that series, and restored
like any other backup: `restore.db --backup HOST/<database>~safety/latest --database
<database>`.
"""

from __future__ import annotations

from typing import Any

from backups.tasks.backup import back_up_database
from maintenance import pg
from maintenance.errors import HostUnreachable, MaintError
from maintenance.results import Status
from maintenance.runners import Runner
from maintenance.secrets import mask_text

SAFETY = "safety"


def take_safety_backup(server: pg.Postgres, runner: Runner, database: str) -> dict[str, Any]:
    """Back up DATABASE on SERVER into its host's stores; {"key", "store", "size"} of it.

    Raise MaintError when it fails: the restore must then stop with nothing overwritten.
    """
    target = server.host
    failed = f"safety backup of {database!r} on {target.name} failed, nothing was restored"
    try:
        result = back_up_database(server, runner, database, SAFETY)
    except HostUnreachable:
        raise
    except MaintError as exc:  # no store to write to
        raise MaintError(f"{failed}: {mask_text(str(exc))}") from exc
    outcomes = result.details.get("databases", [])
    done = outcomes[0] if outcomes else {}
    if result.status != Status.OK or done.get("status") != "ok":
        raise MaintError(f"{failed}: {done.get('error') or result.error or result.summary}")
    return {"key": done["key"], "store": result.details["store"], "size": done["size"]}
