"""The `hooks` setting at work: a host's `before` commands, its task, then its `after` commands.

Run by the executor around every task's procedure on each host, through that host's runner,
so every task has them without knowing (borgmatic's command hooks). A `before` command that
fails stops there: the task does not run on that host, which fails. The `after` commands
always run, told the outcome in MAINT_STATUS (ok or failed); one failing fails the host too,
since what it undoes (an application scaled to 0) is left undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import structlog

from .errors import HostUnreachable, MaintError
from .inventory import Host
from .results import Result, Status
from .runners import Runner
from .secrets import mask_text
from .settings.hooks import TaskHooks, task_key

OUTPUT_TAIL = 2000  # characters of a hook's output kept in the result and the log

log = structlog.get_logger()


@dataclass(frozen=True)
class HookRun:
    """One hook command: where it ran in the task, and what it said (masked, the tail)."""

    phase: str
    command: str
    ran: bool = True
    exit_code: int | None = None  # None: it did not finish (host out of reach, timeout)
    unreachable: bool = False
    output: str = ""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def failure(self) -> str:
        if self.exit_code is None:
            return f"{self.phase} hook `{self.command}` did not finish: {self.output}"
        said = f": {self.output.strip().splitlines()[-1]}" if self.output.strip() else ""
        return f"{self.phase} hook `{self.command}` exited {self.exit_code}{said}"


def hooks_for(host: Host, task: str) -> TaskHooks | None:
    """HOST's hooks around TASK, if it sets any."""
    hooks = host.settings.hooks.get(task_key(task))
    return hooks if hooks is not None and (hooks.before or hooks.after) else None


def run_hooked(
    task: str, host: Host, runner: Runner, attempt: Callable[[], Result], *, dry_run: bool
) -> Result:
    """ATTEMPT (the task's procedure on HOST, which never raises) between HOST's hooks.

    On a dry run the hooks are listed in the result and none runs.
    """
    hooks = hooks_for(host, task)
    if hooks is None:
        return attempt()
    if dry_run:
        return _listed(attempt(), hooks)
    bound = log.bind(task=task, host=host.name)
    runs: list[HookRun] = []
    result = _before(task, host, runner, hooks, runs, bound) or attempt()
    state = "failed" if result.status in (Status.FAILED, Status.UNREACHABLE) else "ok"
    env = {"MAINT_STATUS": state, "MAINT_TASK": task_key(task), "MAINT_HOST": host.name}
    after = [_run(runner, "after", command, env, bound) for command in hooks.after]
    runs += after
    failed = [run.failure() for run in after if not run.ok]
    if failed:
        result.error = "; ".join([*([result.error] if result.error else []), *failed])
        if result.status != Status.UNREACHABLE:
            result.status = Status.FAILED
    return _with_runs(result, runs)


def _before(task, host, runner, hooks: TaskHooks, runs: list[HookRun], bound) -> Result | None:
    """Run the `before` commands into RUNS, stopping at the first that fails: its result."""
    for command in hooks.before:
        run = _run(runner, "before", command, {}, bound)
        runs.append(run)
        if not run.ok:
            status = Status.UNREACHABLE if run.unreachable else Status.FAILED
            return Result(host.name, status, error=f"{run.failure()}; {task} not run")
    return None


def _listed(result: Result, hooks: TaskHooks) -> Result:
    """A dry run's RESULT, naming the hooks a real run would run around it."""
    planned = [HookRun("before", mask_text(c), ran=False) for c in hooks.before]
    planned += [HookRun("after", mask_text(c), ran=False) for c in hooks.after]
    listed = "; ".join(f"{run.phase}: {run.command}" for run in planned)
    result.summary = f"{result.summary} (hooks not run: {listed})".lstrip()
    return _with_runs(result, planned)


def _run(runner: Runner, phase: str, command: str, env: dict[str, str], bound) -> HookRun:
    """Run one hook command; a host out of reach is a run without an exit code."""
    shown = mask_text(command)
    try:
        outcome = runner.run(command, env=env or None)
    except (HostUnreachable, MaintError) as exc:
        output = mask_text(str(exc))[-OUTPUT_TAIL:]
        run = HookRun(phase, shown, output=output, unreachable=isinstance(exc, HostUnreachable))
        bound.error("hook failed", phase=phase, command=shown, error=run.output)
        return run
    output = mask_text((outcome.stdout + outcome.stderr).strip())[-OUTPUT_TAIL:]
    run = HookRun(
        phase, shown, exit_code=outcome.exit_code, output=output,
        duration_s=round(outcome.duration_s, 3),
    )  # fmt: skip
    event = bound.info if run.ok else bound.error
    event("hook ran", phase=phase, command=shown, exit_code=run.exit_code, output=output)
    return run


def _with_runs(result: Result, runs: list[HookRun]) -> Result:
    result.details = {**result.details, "hooks": [asdict(run) for run in runs]}
    return result
