"""Validate every host of an inventory at once and say each problem once, where it was set.

A key set in a group's vars is inherited by every host of the group; its problem is reported
once, naming the group and the hosts it reaches, rather than once per host.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .host import HostSettings, near_miss
from .problems import closest, key_path, problems_of
from .scheduler import ALL_VARS_ONLY


@dataclass(frozen=True)
class HostVars:
    """One host's merged vars and, per top-level key, where it was set ("group 'db'")."""

    name: str
    vars: Mapping[str, Any]
    origins: Mapping[str, str]


class SettingsError(ValueError):
    """Every settings problem of a set of hosts, one line each, in the user's words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n  ".join(["invalid settings:", *problems]))
        self.problems = problems


def parse_host(host: HostVars) -> tuple[HostSettings | None, list[tuple[str, str, str]]]:
    """HOST's settings, or None and its problems as (origin, key path, words)."""
    found: list[tuple[str, str, str]] = []
    origin = lambda key: host.origins.get(str(key), f"host {host.name!r}")  # noqa: E731
    for key in host.vars:
        guess = near_miss(str(key))
        if guess:
            found.append((origin(key), str(key), f"unknown key; did you mean {guess!r}?"))
    settings = None
    try:
        settings = HostSettings.model_validate(dict(host.vars))
    except ValidationError as exc:
        for loc, words in problems_of(exc, HostSettings):
            found.append((origin(loc[0]) if loc else origin(""), key_path(loc), words))
    if settings is not None:
        found += [(origin("backup"), path, words) for path, words in _source_clashes(settings)]
    return (None if found else settings), found


def _source_clashes(settings: HostSettings) -> list[tuple[str, str]]:
    """A backup.sources entry named like one of the host's PostgreSQL databases: both would
    write under the same key prefix (`<host>/<name>/`), so retention would mix them."""
    databases = set(settings.postgres.databases or ())
    return [
        (f"backup.sources[{index}].name",
         f"{source.name!r} is also in postgres.databases: a source's name names its backups, "
         "so it must differ from every database's")
        for index, source in enumerate(settings.backup.sources)
        if source.name in databases
    ]  # fmt: skip


def parse_hosts(
    source: str, hosts: Iterable[HostVars], known: Collection[str] | None = None
) -> dict[str, HostSettings]:
    """Settings of every host. Raise SettingsError listing every problem once.

    KNOWN is every host of the inventory, which a `restore_target` must name (None: a host
    parsed alone, its target unchecked)."""
    parsed: dict[str, HostSettings] = {}
    reached: dict[tuple[str, str, str], list[str]] = {}
    for host in hosts:
        settings, found = parse_host(host)
        if settings is not None and known is not None:
            found += _unknown_target(host, settings, known)
        if settings is not None:
            parsed[host.name] = settings
        for problem in found:
            reached.setdefault(problem, []).append(host.name)
    if reached:
        raise SettingsError([_line(source, *problem, names) for problem, names in reached.items()])
    return parsed


def _unknown_target(
    host: HostVars, settings: HostSettings, known: Collection[str]
) -> list[tuple[str, str, str]]:
    """The problem of a `restore_target` naming no host of the inventory, if it does."""
    target = settings.restore_target
    if target is None or target in known:
        return []
    guess = closest(target, [name for name in known if name != host.name])
    words = f"no host {target!r} in the inventory" + (f"; did you mean {guess!r}?" if guess else "")
    return [(host.origins.get("restore_target", f"host {host.name!r}"), "restore_target", words)]


def parse_group(source: str, group: str, variables: Mapping[str, Any]) -> HostSettings:
    """Settings read from one group's own vars, not a host's merge: the scheduler's keys in
    all.vars, which hold even when no host is listed. Raise SettingsError."""
    origins = dict.fromkeys(map(str, variables), f"group {group!r}")
    settings, found = parse_host(HostVars(group, variables, origins))
    if settings is None:
        raise SettingsError([f"{source}: {where}: {path}: {words}" for where, path, words in found])
    return settings


def misplaced(source: str, places: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems for the scheduler's keys set anywhere but all.vars, where it reads them.

    PLACES maps where vars were written ("group 'db'", "host 'db1'") to those vars as
    written there, all.vars left out: a host's or a child group's schedule would be ignored.
    """
    found = []
    for where, variables in places.items():
        for path in ALL_VARS_ONLY:
            section, _, key = path.partition(".")
            value = variables.get(section)
            if section in variables and (not key or (isinstance(value, Mapping) and key in value)):
                found.append(
                    f"{source}: {where}: {path}: belongs in all.vars: the scheduler reads it there"
                )
    return found


def _line(source: str, origin: str, path: str, words: str, hosts: list[str]) -> str:
    where = origin
    if origin.startswith("group"):
        shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
        where = f"{origin} (host{'s' if len(hosts) > 1 else ''} {shown})"
    return f"{source}: {where}: {path}: {words}"
