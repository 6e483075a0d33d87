"""Ansible YAML inventories, loaded into frozen Host objects.

Parsing validates everything once and reports every problem together, each naming the file,
the group or host, and the key, so downstream code never re-checks a dict.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import yaml

from .errors import ConfigError
from .secrets import register_secrets_in

if TYPE_CHECKING:
    from .settings.host import HostSettings

# The settings model (pydantic) is imported when an inventory is loaded, not with this module:
# `maint --help`, `--list` and `--version` load none and start 0.1 s sooner without it.

_GROUP_KEYS = {"hosts", "vars", "children"}
_CONNECTIONS = {"local": "local", "ssh": "ssh", "smart": "ssh", "paramiko": "ssh"}


@dataclass(frozen=True)
class Host:
    """One inventory host with its vars merged in Ansible's precedence order."""

    name: str
    groups: tuple[str, ...]
    vars: Mapping[str, Any] = field(repr=False)
    # Where each top-level var was set: "host 'db1'" or "group 'databases'".
    origins: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def settings(self) -> HostSettings:
        """The product's keys of this host, typed. Raise ConfigError naming every problem.

        load_inventory has already parsed every host; this parses a Host made by hand.
        """
        from .settings.validate import HostVars, SettingsError, parse_hosts

        try:
            return parse_hosts("vars", [HostVars(self.name, self.vars, self.origins)])[self.name]
        except SettingsError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host", self.name))

    @property
    def port(self) -> int:
        return int(self.vars.get("ansible_port", 22))

    @property
    def user(self) -> str | None:
        user = self.vars.get("ansible_user")
        return str(user) if user is not None else None

    @property
    def connection(self) -> str:
        return _CONNECTIONS[str(self.vars.get("ansible_connection", "ssh"))]

    @property
    def key_file(self) -> str | None:
        key = self.vars.get("ansible_ssh_private_key_file")
        return str(Path(str(key)).expanduser()) if key else None


@dataclass(frozen=True)
class Inventory:
    """Hosts in file order plus each group's members (descendant groups included)."""

    source: Path
    hosts: Mapping[str, Host]
    groups: Mapping[str, frozenset[str]]
    # all.vars as written: the inventory's own keys (the schedule), not any host's merge.
    vars: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __iter__(self) -> Iterator[Host]:
        return iter(self.hosts.values())


@dataclass
class _Group:
    vars: dict[str, Any] = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    hosts: list[str] = field(default_factory=list)


class _Parser:
    """Walks the YAML tree once, collecting groups, host vars and every problem found."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.groups: dict[str, _Group] = {"all": _Group()}
        self.host_vars: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}")

    def parse_group(self, name: str, body: Any, parent: str | None) -> None:
        group = self.groups.setdefault(name, _Group())
        if parent is not None:
            group.parents.add(parent)
        if body is None:
            return
        if not isinstance(body, Mapping):
            self.problem(f"group {name!r}", f"expected a mapping, got {_kind(body)}")
            return
        for key in body:
            if key not in _GROUP_KEYS:
                self.problem(
                    f"group {name!r}", f"unknown key {key!r} (expected hosts, vars, children)"
                )
        self.parse_vars(f"group {name!r}", body.get("vars"), group.vars)
        self.parse_hosts(name, body.get("hosts"), group)
        children = body.get("children")
        if children is None:
            return
        if not isinstance(children, Mapping):
            self.problem(
                f"group {name!r}", f"key 'children': expected a mapping, got {_kind(children)}"
            )
            return
        for child, child_body in children.items():
            self.parse_group(str(child), child_body, name)

    def parse_vars(self, where: str, raw: Any, into: dict[str, Any]) -> None:
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            self.problem(where, f"key 'vars': expected a mapping, got {_kind(raw)}")
            return
        into.update(raw)

    def parse_hosts(self, group_name: str, raw: Any, group: _Group) -> None:
        if raw is None:
            return
        if not isinstance(raw, Mapping):
            self.problem(
                f"group {group_name!r}", f"key 'hosts': expected a mapping, got {_kind(raw)}"
            )
            return
        for host_name, host_vars in raw.items():
            name = str(host_name)
            if host_vars is not None and not isinstance(host_vars, Mapping):
                self.problem(
                    f"group {group_name!r}, host {name!r}",
                    f"expected a mapping of vars, got {_kind(host_vars)}",
                )
                continue
            self.host_vars.setdefault(name, {}).update(host_vars or {})
            if name not in group.hosts:
                group.hosts.append(name)

    def depths(self) -> dict[str, int]:
        """Depth of each group below 'all' (longest path), reporting parent cycles."""
        depths: dict[str, int] = {}

        def depth(name: str, trail: tuple[str, ...]) -> int:
            if name in trail:
                self.problem(
                    f"group {name!r}", "is its own ancestor: " + " -> ".join((*trail, name))
                )
                return 0
            if name not in depths:
                parents = self.groups[name].parents or ({"all"} if name != "all" else set())
                depths[name] = max((depth(p, (*trail, name)) + 1 for p in parents), default=0)
            return depths[name]

        for name in self.groups:
            depth(name, ())
        return depths


def _kind(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number"}.get(type(value), type(value).__name__)


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an Ansible YAML inventory. Raise ConfigError listing every problem."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: inventory file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read inventory: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}: {where}: YAML syntax error: {problem}") from None
    return _build(source, document)


def _build(source: Path, document: Any) -> Inventory:
    parser = _Parser(source)
    if document is None:
        document = {}
    if not isinstance(document, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of groups at the top, got {_kind(document)}"
        )
    for name, body in document.items():
        parser.parse_group(str(name), body, None if name == "all" else "all")
    depths = parser.depths()
    hosts = {name: _make_host(parser, name, depths) for name in parser.host_vars}
    if parser.problems:
        raise ConfigError("invalid inventory:\n  " + "\n  ".join(parser.problems))
    _parse_settings(source, hosts, _vars_outside_all(parser))
    members = {name: frozenset(_members(parser, name)) for name in parser.groups}
    members["all"] = frozenset(hosts)
    for host in hosts.values():
        register_secrets_in(dict(host.vars))
    return Inventory(
        source=source,
        hosts=MappingProxyType(hosts),
        groups=MappingProxyType(members),
        vars=MappingProxyType(parser.groups["all"].vars),
    )


def _parse_settings(
    source: Path, hosts: Mapping[str, Host], outside_all: Mapping[str, Mapping[str, Any]]
) -> None:
    """Parse every host's settings once, now, so a bad key stops every task before it runs.

    OUTSIDE_ALL is the vars written in each place but all.vars, where the scheduler's keys
    would be ignored (settings.validate.misplaced)."""
    from .settings.validate import HostVars, SettingsError, misplaced, parse_hosts

    problems = misplaced(str(source), outside_all)
    try:
        parsed = parse_hosts(
            str(source), [HostVars(h.name, h.vars, h.origins) for h in hosts.values()], set(hosts)
        )
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(str(SettingsError(problems))) from None
    for name, settings in parsed.items():
        hosts[name].__dict__["settings"] = settings  # fills the cached_property


def _vars_outside_all(parser: _Parser) -> dict[str, Mapping[str, Any]]:
    """The vars as written in each child group and host: where ("group 'db'") to vars."""
    places: dict[str, Mapping[str, Any]] = {
        f"group {name!r}": group.vars for name, group in parser.groups.items() if name != "all"
    }
    places.update((f"host {name!r}", variables) for name, variables in parser.host_vars.items())
    return places


def _members(parser: _Parser, group: str) -> set[str]:
    found = set(parser.groups[group].hosts)
    for name, other in parser.groups.items():
        if group in other.parents:
            found |= _members(parser, name)
    return found


def _ancestors(parser: _Parser, group: str) -> set[str]:
    found = {"all"}
    for parent in parser.groups[group].parents:
        if parent not in found:
            found |= {parent} | _ancestors(parser, parent)
    return found


def _make_host(parser: _Parser, name: str, depths: dict[str, int]) -> Host:
    direct = [g for g, group in parser.groups.items() if name in group.hosts]
    every = set(direct)
    for group in direct:
        every |= _ancestors(parser, group)

    def order(group: str) -> tuple[int, int, str]:
        priority = parser.groups[group].vars.get("ansible_group_priority", 1)
        return (depths.get(group, 0), int(priority) if str(priority).isdigit() else 1, group)

    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for group in sorted(every, key=order):
        merged.update(parser.groups[group].vars)
        origins.update(dict.fromkeys(parser.groups[group].vars, f"group {group!r}"))
    merged.update(parser.host_vars[name])
    origins.update(dict.fromkeys(parser.host_vars[name], f"host {name!r}"))
    _check_host_vars(parser, name, merged)
    groups = tuple(sorted(every - {"all"}, key=order))
    return Host(
        name=name, groups=groups, vars=MappingProxyType(merged), origins=MappingProxyType(origins)
    )


def _check_host_vars(parser: _Parser, name: str, merged: Mapping[str, Any]) -> None:
    where = f"host {name!r}"
    connection = merged.get("ansible_connection", "ssh")
    if str(connection) not in _CONNECTIONS:
        parser.problem(
            where,
            f"key 'ansible_connection': unknown connection type {connection!r} "
            f"(expected one of: {', '.join(sorted(_CONNECTIONS))})",
        )
    port = merged.get("ansible_port", 22)
    if isinstance(port, bool) or not str(port).isdigit() or not 0 < int(port) < 65536:
        parser.problem(where, f"key 'ansible_port': expected a port number, got {port!r}")
