"""`hooks`: commands run on a host before and after a task works on it.

Like borgmatic's command hooks: "scale the application to 0 before restore.db, back up after".
The executor runs them around every task's procedure, so each task has them without knowing.

This layer knows no task objects, so the task names that run on hosts are listed here; a test
holds the list equal to the tasks the CLI defines (tests/test_hooks.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema

from .problems import closest
from .types import OneOrMany, Section

# Every task that runs a procedure on each selected host (config.*, notify.test and
# schedule.* act without one, so a hook for them would never run).
HOST_TASKS = (
    "backup.db", "backup.globals", "backup.list", "backup.prune",
    "certs.check",
    "db.analyze", "db.bloat", "db.idle_connections", "db.long_queries", "db.purge",
    "db.reindex", "db.unused_indexes", "db.vacuum",
    "health.check", "job.run", "logs.clean", "logs.rotate",
    "restore.db", "restore.verify",
)  # fmt: skip


def task_key(name: str) -> str:
    """A task's name as the hooks are keyed: invoke's dashes written as underscores."""
    return name.replace("-", "_")


def _task_name(value: str) -> str:
    name = task_key(value)
    if name in HOST_TASKS:
        return name
    guess = closest(name, HOST_TASKS)
    hint = f"did you mean {guess!r}?" if guess else f"tasks: {', '.join(HOST_TASKS)}"
    raise ValueError(f"unknown task {value!r}; {hint}")


TaskName = Annotated[str, AfterValidator(_task_name)]
Commands = Annotated[
    OneOrMany,
    WithJsonSchema(
        {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
         "x-type": "command or list of commands"}
    ),
]  # fmt: skip


class TaskHooks(Section):
    """The commands around one task, each run by the host's shell in order."""

    before: Commands = Field(
        default_factory=list,
        description="run before the task on the host; one failing fails the host's task "
        "without running it",
        examples=["kubectl scale deploy/app --replicas=0"],
    )
    after: Commands = Field(
        default_factory=list,
        description="run after the task on the host, also when it failed; "
        "MAINT_STATUS=ok|failed in its environment",
        examples=["kubectl scale deploy/app --replicas=2"],
    )


_DASHED = tuple(name.replace("_", "-") for name in HOST_TASKS if "_" in name)
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"enum": [*HOST_TASKS, *_DASHED]},
    "additionalProperties": TaskHooks.model_json_schema(),
    "x-type": "task name: {before, after}",
}

Hooks = Annotated[dict[TaskName, TaskHooks], WithJsonSchema(_SCHEMA)]
