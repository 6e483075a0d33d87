"""Choosing PostgreSQL client tools on a host that match its server's version.

A pg_dump older than the server aborts with "server version mismatch", and a dump made by a
newer pg_dump may not restore with an older pg_restore, so the same major version as the
server is preferred, then the closest newer one. Debian keeps each major's tools in
/usr/lib/postgresql/<major>/bin.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from maintenance.errors import MaintError
from maintenance.inventory import Host
from maintenance.runners import Runner

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class ClientVersionError(MaintError):
    """No suitable client tool on the host."""


@dataclass(frozen=True)
class ClientTool:
    path: str
    version: str  # e.g. "15.18"
    major: int


def discovery_script(tool: str, bin_dir: str | None) -> str:
    """One shell round trip printing `<path>\\t<--version output>` for every candidate TOOL."""
    candidates = (
        [f"{shlex.quote(bin_dir)}/{tool}"]
        if bin_dir
        else [
            f"/usr/lib/postgresql/*/bin/{tool}",
            f"/usr/pgsql-*/bin/{tool}",
            f'"$(command -v {tool})"',
        ]
    )
    return (
        f"for b in {' '.join(candidates)}; do "
        '[ -x "$b" ] && printf "%s\\t%s\\n" "$b" "$("$b" --version 2>/dev/null)"; '
        "done; true"
    )


def parse_candidates(output: str) -> list[ClientTool]:
    found: dict[str, ClientTool] = {}
    for line in output.splitlines():
        path, _, version_text = line.partition("\t")
        match = _VERSION.search(version_text)
        if match and path not in found:
            version = match.group(1) + (f".{match.group(2)}" if match.group(2) else "")
            found[path] = ClientTool(path, version, int(match.group(1)))
    return list(found.values())


def choose(candidates: list[ClientTool], server_major: int) -> ClientTool | None:
    """Same major as the server if present, else the oldest newer one; never an older one.

    Between tools of one major, a version's own directory wins over what PATH finds: on
    Debian /usr/bin/pg_dump is pg_wrapper, a Perl script that picks a version at each call
    (by cluster or newest installed) and costs a Perl start-up.
    """
    usable = [tool for tool in candidates if tool.major >= server_major]
    return min(usable, key=lambda tool: (tool.major, not _versioned(tool), tool.path), default=None)


def _versioned(tool: ClientTool) -> bool:
    return tool.path.startswith(("/usr/lib/postgresql/", "/usr/pgsql-"))


def find_client(host: Host, runner: Runner, tool: str, server_major: int) -> ClientTool:
    """Locate TOOL on HOST for a server of SERVER_MAJOR. Raise ClientVersionError if none fits."""
    bin_dir = host.settings.postgres.bin_dir
    candidates = parse_candidates(runner.run(discovery_script(tool, bin_dir)).stdout)
    chosen = choose(candidates, server_major)
    if chosen is None:
        seen = ", ".join(f"{c.version} at {c.path}" for c in candidates) or "none found"
        raise ClientVersionError(
            f"the server is PostgreSQL {server_major}: {tool} {server_major} or newer is needed "
            f"on {host.name} (found: {seen}); install postgresql-client-{server_major} "
            "or set postgres.bin_dir"
        )
    return chosen
