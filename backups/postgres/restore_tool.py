"""pg_restore: the matching client on the target host and its command line."""

from __future__ import annotations

from backups.archive.manifest import Manifest
from backups.postgres.clients import ClientTool, find_client
from backups.postgres.snapshot import server_version
from maintenance import pg
from maintenance.runners import Runner


def restore_tool(server: pg.Postgres, runner: Runner, manifest: Manifest) -> ClientTool:
    """A pg_restore at least as new as both the target server and the dump's pg_dump.

    An older pg_restore cannot read a newer archive format, whatever the server's version.
    """
    with server.connect() as connection:
        _, target_major = server_version(connection)
    dump_major = int(manifest.pg_dump_version.split(".")[0])
    return find_client(server.host, runner, "pg_restore", max(target_major, dump_major))


def restore_command(
    tool: ClientTool,
    conninfo: str,
    path: str | None,
    jobs: int,
    *,
    clean: bool = False,
    use_list: str | None = None,
) -> list[str]:
    """pg_restore of a custom-format file, in parallel, stopping at the first error.

    PATH None reads the archive from stdin (one job only); USE_LIST restores only the
    entries that file lists.
    """
    command = [tool.path, "--no-owner", "--no-acl", "--exit-on-error", f"--jobs={max(1, jobs)}"]
    if clean:
        command += ["--clean", "--if-exists"]
    if use_list is not None:
        command.append(f"--use-list={use_list}")
    command += ["--no-password", f"--dbname={conninfo}"]
    return command if path is None else [*command, path]
