"""The tasks a schedule may name, read from the live invoke collection with their flags.

Task namespaces are added as the product grows, so the scheduler never keeps its own list: it
asks the collection which tasks exist and which flags each takes, and turns a job's `args`
into that task's command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from invoke import Collection

from ..errors import ConfigError

# Flags the scheduler sets itself for every job; a job's `args` may not override them.
RESERVED_FLAGS = frozenset({"inventory", "json", "limit"})
# Namespaces whose tasks make no sense as scheduled jobs.
UNSCHEDULABLE = ("schedule.",)


@dataclass(frozen=True)
class Flag:
    name: str  # as typed on the command line, without dashes in front: 'disk-path'
    kind: type
    default: Any


@dataclass(frozen=True)
class TaskSpec:
    name: str  # canonical, as invoke shows it: 'db.unused-indexes'
    flags: Mapping[str, Flag]

    def argv(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        """The command-line flags for ARGS. Raise ConfigError naming the first bad key."""
        argv: list[str] = []
        for key, value in args.items():
            flag = self.flags.get(_flag_name(str(key)))
            if flag is None or flag.name in RESERVED_FLAGS:
                known = ", ".join(sorted(set(self.flags) - RESERVED_FLAGS)) or "none"
                raise ConfigError(f"unknown flag {key!r} for {self.name} (flags: {known})")
            argv.extend(_flag_argv(flag, value))
        return tuple(argv)


Catalog = Mapping[str, TaskSpec]


def catalog_from(collection: Collection) -> Catalog:
    """Every schedulable task of COLLECTION with its flags, keyed by canonical name."""
    specs = {}
    for name in collection.task_names:
        if name.startswith(UNSCHEDULABLE):
            continue
        flags = {
            argument.names[0]: Flag(argument.names[0], argument.kind, argument.default)
            for argument in collection[name].get_arguments()
        }
        specs[name] = TaskSpec(name, MappingProxyType(flags))
    return MappingProxyType(specs)


def find_task(catalog: Catalog, name: str) -> TaskSpec | None:
    """Look a task up by either spelling: 'db.unused_indexes' or 'db.unused-indexes'."""
    return catalog.get(name.replace("_", "-"))


def _flag_name(key: str) -> str:
    return key.replace("_", "-").lstrip("-")


def _flag_argv(flag: Flag, value: Any) -> list[str]:
    option = f"--{flag.name}"
    if flag.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"flag {flag.name!r}: expected true or false, got {value!r}")
        if value == bool(flag.default):
            return []
        return [option] if value else [f"--no-{flag.name}"]
    if value is None or isinstance(value, Mapping):
        raise ConfigError(f"flag {flag.name!r}: expected a value, got {value!r}")
    if flag.kind is list:
        values = value if isinstance(value, list | tuple) else [value]
        return [part for item in values for part in (option, str(item))]
    if isinstance(value, list | tuple):
        raise ConfigError(f"flag {flag.name!r} takes one value, got a list")
    return [option, str(value)]
