"""backup.globals: roles and tablespaces (`pg_dumpall --globals-only`) beside the dumps.

Role passwords are left out (`--no-role-passwords`) when the connecting role is not a
superuser, since reading pg_authid needs one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backups.archive.codecs import suffix
from backups.archive.layout import globals_key
from backups.archive.manifest import Manifest
from backups.archive.transfer import dump_into_stores, write_manifests
from backups.postgres.clients import find_client
from backups.postgres.snapshot import server_version
from backups.stores.host import open_host_stores
from maintenance import __version__, pg
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.runners import Runner
from maintenance.secrets import mask_text
from maintenance.units import format_size

TASK = "backup.globals"


def globals_command(tool_path: str, conninfo: str, superuser: bool) -> list[str]:
    command = [tool_path, "--globals-only", "--no-password", f"--dbname={conninfo}"]
    return command if superuser else [*command, "--no-role-passwords"]


def backup_globals(host: Host, runner: Runner, options: object) -> Result:
    """Dump HOST's roles and tablespaces into each of its stores at once, manifests last."""
    settings = host.settings.backup
    stores = open_host_stores(host)
    for store in stores:
        store.preflight()
    with pg.reach(host, runner, TASK) as server, server.connect() as connection:
        version, major = server_version(connection)
        row = connection.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        dbname = connection.info.dbname
    superuser = bool(row and row[0])
    tool = find_client(host, runner, "pg_dumpall", major)
    conninfo, env = server.client(dbname)
    started = datetime.now(UTC)
    key = globals_key(host.name, started, suffix(settings.codec))
    command = globals_command(tool.path, conninfo, superuser)
    stream, copies = dump_into_stores(
        runner, command, env, stores, key, settings.codec, settings.level
    )
    manifest = Manifest(
        host=host.name, database=key.database, key=key.key, started_at=started.isoformat(),
        finished_at=datetime.now(UTC).isoformat(), size=stream.stored.size,
        sha256=stream.stored.sha256.hexdigest(), codec=settings.codec, server_version=version,
        pg_dump_version=tool.version, tool_version=__version__, kind="globals",
        flags=[] if superuser else ["role passwords omitted: not a superuser"],
    )  # fmt: skip
    write_manifests(copies, key, manifest)
    lost = [copy for copy in copies if not copy.ok]
    details: dict[str, Any] = {"key": key.key, "size": manifest.size, "sha256": manifest.sha256,
               "flags": manifest.flags}  # fmt: skip
    if len(stores) > 1:
        details["stores"] = [copy.to_dict() for copy in copies]
    where = " and ".join(f"{copy.store.url}/{key.key}" for copy in copies if copy.ok)
    return Result(
        host.name,
        Status.FAILED if lost else Status.OK,
        details=details,
        summary=f"globals {format_size(manifest.size)} -> {where or 'no store'}",
        error="; ".join(f"{c.store.url}: {mask_text(str(c.error))}" for c in lost) or None,
    )
