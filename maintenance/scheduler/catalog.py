"""The tasks a schedule may name, read from the live invoke collection with their flags.

Task namespaces are added as the product grows, so the scheduler never keeps its own list: it
asks the collection which tasks exist and which flags each takes, and turns a job's `args`
into that task's command line.

A task of the collection may carry `check_args(argv)`, which reads a command line as the task
reads its flags when it runs and raises ConfigError for a bad value ("--older-than: ambiguous:
write 12min or 12mo"); the CLI's tasks do (cli.spec.make_task). This layer cannot import the
CLI, so the check comes in with the collection, and a job's values are checked when the
schedule loads rather than failing every run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from invoke import Collection

from ..errors import ConfigError
from ..inventory import Inventory

# Flags the scheduler sets itself for every job; a job's `args` may not override them.
RESERVED_FLAGS = frozenset({"inventory", "json", "limit"})
# Namespaces whose tasks make no sense as scheduled jobs.
UNSCHEDULABLE = ("schedule.",)


@dataclass(frozen=True)
class Flag:
    name: str  # as typed on the command line, without dashes in front: 'disk-path'
    kind: type
    default: Any


class ArgError(ConfigError):
    """A bad value in a job's `args`: KEY as the job writes it, and what is wrong with it."""

    def __init__(self, key: str, words: str) -> None:
        super().__init__(f"{key}: {words}")
        self.key = key
        self.words = words


@dataclass(frozen=True)
class TaskSpec:
    name: str  # canonical, as invoke shows it: 'db.unused-indexes'
    flags: Mapping[str, Flag]
    # Reads a command line as the task does, against the inventory if given; raises
    # ConfigError. None: flag names only.
    check: Callable[[Sequence[str], Inventory | None], None] | None = None

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

    def checked_argv(
        self,
        args: Mapping[str, Any],
        inventory: Inventory | None = None,
        limit: str | None = None,
    ) -> tuple[str, ...]:
        """argv(ARGS), its values read as the task reads them when it runs (nothing runs),
        on the hosts of INVENTORY that LIMIT selects when given (a job.run name must exist).

        Raise ConfigError; ArgError when the task's message names one flag of ARGS.
        """
        argv = self.argv(args)
        if self.check is None:
            return argv
        selection = ("--limit", limit) if limit and "limit" in self.flags else ()
        try:
            self.check([*argv, *selection], inventory)
        except ConfigError as exc:
            option, colon, words = str(exc).partition(": ")
            key = next((k for k in args if colon and option == f"--{_flag_name(str(k))}"), None)
            if key is not None:
                raise ArgError(str(key), words) from None
            raise
        return argv


Catalog = Mapping[str, TaskSpec]


def catalog_from(collection: Collection, check_args: bool = True) -> Catalog:
    """Every schedulable task of COLLECTION with its flags, keyed by canonical name; with
    CHECK_ARGS, with the tasks' own checks of their flags' values (`check_args`)."""
    specs = {}
    for name in collection.task_names:
        if name.startswith(UNSCHEDULABLE):
            continue
        flags = {
            argument.names[0]: Flag(argument.names[0], argument.kind, argument.default)
            for argument in collection[name].get_arguments()
        }
        check = getattr(collection[name], "check_args", None) if check_args else None
        specs[name] = TaskSpec(name, MappingProxyType(flags), check)
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
