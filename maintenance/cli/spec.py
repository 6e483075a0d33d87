"""One spec per task: its name, its own flags with help, and how its flags become a plan.

The common flags (`--inventory`, `--limit`, `--json`, `--forks`, `--dry-run`) are declared
here once; `make_task` builds the invoke task from a spec, so every task gets the same flags
with the same help, the same exit code for a bad flag, and the same run around its procedure.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from invoke import Collection
from invoke.exceptions import Exit, ParseError
from invoke.parser import Parser, ParserContext

from ..errors import ConfigError
from ..executor import DEFAULT_FORKS, Procedure
from ..inventory import Host, Inventory
from ..reporting import EXIT_USAGE
from .common import COMMON_HELP, MaintTask, run_task

EXIT_UNKNOWN = 3  # monitoring plugins: bad configuration is UNKNOWN


@dataclass(frozen=True)
class Flag:
    """A flag of one task. REQUIRED flags are positional, as invoke makes them."""

    name: str
    help: str
    default: Any = None
    repeatable: bool = False
    required: bool = False


COMMON = {
    "inventory": Flag("inventory", COMMON_HELP["inventory"]),
    "limit": Flag("limit", COMMON_HELP["limit"]),
    "json": Flag("json", COMMON_HELP["json"], False),
    "forks": Flag("forks", COMMON_HELP["forks"], DEFAULT_FORKS),
}
FAN_OUT = ("inventory", "limit", "json", "forks")


def dry_run(help: str) -> Flag:
    """The --dry-run flag, with what a dry run of this task shows."""
    return Flag("dry_run", help, False)


@dataclass(frozen=True)
class Plan:
    """What a task runs over its hosts, built from its flags (a bad flag raises ConfigError)."""

    procedure: Procedure
    options: Any = None
    make_options: Callable[[Inventory], Any] | None = None
    validate: Callable[[Host, Any], object] | None = None
    columns: Sequence[str] = ()
    limit: str | None = None  # overrides --limit (restore.db works on its --target)
    forks: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    """A task: PLAN turns its flags into a fan-out over hosts, or ACTION does the work itself.

    COMMON names the shared flags it takes; its own FLAGS follow them, in the order invoke
    gives out short forms. MONITORING tasks exit as monitoring plugins do (bad input is 3).
    """

    name: str
    doc: str
    flags: tuple[Flag, ...] = ()
    plan: Callable[[SimpleNamespace], Plan] | None = None
    action: Callable[[SimpleNamespace], None] | None = None
    common: tuple[str, ...] = FAN_OUT
    monitoring: bool = False

    def all_flags(self) -> list[Flag]:
        flags = [*(COMMON[name] for name in self.common), *self.flags]
        return [f for f in flags if f.required] + [f for f in flags if not f.required]


def make_task(spec: TaskSpec) -> MaintTask:
    """The invoke task of SPEC: a body whose signature invoke reads as the task's flags."""
    flags = spec.all_flags()

    def body(c: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(c, *args, **kwargs)
        bound.apply_defaults()
        given = SimpleNamespace(**{k: v for k, v in bound.arguments.items() if k != "c"})
        if spec.action is not None:
            spec.action(given)
            return
        assert spec.plan is not None
        _run_plan(spec, given)

    parameters = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for flag in flags:
        default = inspect.Parameter.empty if flag.required else flag.default
        parameters.append(
            inspect.Parameter(flag.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default)
        )
    signature = inspect.Signature(parameters)
    body.__signature__ = signature  # type: ignore[attr-defined]
    body.__doc__ = spec.doc
    body.__name__ = spec.name.split(".")[-1]
    task = MaintTask(
        body,
        name=spec.name.split(".")[-1],
        help={flag.name: flag.help for flag in flags},
        iterable=[flag.name for flag in flags if flag.repeatable],
    )
    task.check_args = flag_check(spec, task)
    return task


def flag_check(
    spec: TaskSpec, task: MaintTask
) -> Callable[[Sequence[str], Inventory | None], None] | None:
    """A check of a command line for SPEC's TASK, as the task reads it: invoke parses the
    flags, then the spec's plan is built from them and thrown away. Raise ConfigError.

    Given the INVENTORY, the options the plan makes from it are made too (and thrown away):
    job.run refuses there a job name that no selected host defines. Neither runs anything or
    contacts a host: procedures run only in run_task. None for a task that acts instead of
    planning.
    """
    plan = spec.plan
    if plan is None:
        return None

    def check(argv: Sequence[str], inventory: Inventory | None = None) -> None:
        context = ParserContext(name=spec.name, args=task.get_arguments())
        try:
            parsed = Parser(contexts=[context]).parse_argv([spec.name, *argv])
        except ParseError as exc:
            raise ConfigError(str(exc)) from None
        except ValueError:  # invoke casts number flags with int(), as program.py says
            raise ConfigError(_not_a_number(context, argv)) from None
        built = plan(SimpleNamespace(**parsed[0].as_kwargs))
        if inventory is not None and built.make_options is not None:
            built.make_options(inventory)

    return check


def _not_a_number(context: ParserContext, argv: Sequence[str]) -> str:
    """'--top: expected a whole number, got 'x'': the number flag of ARGV that int() refused."""
    for option, value in itertools.pairwise(argv):
        flag = context.flags.get(option)
        if flag is not None and flag.kind is int and not value.lstrip("-").isdigit():
            return f"{option}: expected a whole number, got {value!r}"
    return "expected a whole number"


def _run_plan(spec: TaskSpec, given: SimpleNamespace) -> None:
    from ..monitoring import exit_code as monitoring_exit_code
    from ..reporting import exit_code

    usage = EXIT_UNKNOWN if spec.monitoring else EXIT_USAGE
    assert spec.plan is not None
    try:
        if getattr(given, "forks", 1) < 1:
            raise ConfigError(f"--forks: expected at least 1, got {given.forks}")
        plan = spec.plan(given)
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=usage) from None
    code_for = monitoring_exit_code if spec.monitoring else exit_code
    run_task(
        spec.name,
        plan.procedure,
        plan.options,
        inventory=given.inventory,
        limit=plan.limit if plan.limit is not None else getattr(given, "limit", None),
        json=getattr(given, "json", False),
        forks=plan.forks or getattr(given, "forks", None) or DEFAULT_FORKS,
        code_for=code_for,
        usage_code=usage,
        columns=plan.columns,
        validate=plan.validate,
        make_options=plan.make_options,
        dry_run=getattr(given, "dry_run", False),
    )


def collection(name: str, specs: Sequence[TaskSpec]) -> Collection:
    """The collection of a namespace's tasks, in the order given."""
    return Collection(name, *(make_task(spec) for spec in specs))
