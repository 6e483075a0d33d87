"""`hooks`: commands run on the host before and after any task ("scale to 0, then back up").

The hooks run around logs.clean here: a task with a visible effect (an old log deleted) and no
server to start, so what a failing `before` prevents can be seen on disk.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from maintenance.cli.collection import build_namespace
from maintenance.cli.spec import TaskSpec
from maintenance.settings.hooks import HOST_TASKS
from tests.inventories import fleet_hosts, fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli
from tests.settings_cases import Case, assert_refused

HOOK_TASKS = ("db.vacuum", "logs.clean", "restore.db")

CASES = [
    Case("task-typo", {"hooks": {"backup.bd": {"before": "true"}}},
         "hooks.backup.bd: unknown task 'backup.bd'; did you mean 'backup.db'?", HOOK_TASKS),
    Case("not-a-mapping", {"hooks": "kubectl scale --replicas=0"},
         "hooks: expected a mapping of keys, got the string", HOOK_TASKS),
    Case("task-not-a-mapping", {"hooks": {"restore.db": "true"}},
         "hooks.restore.db: expected a mapping of keys, got the string 'true'", HOOK_TASKS),
    Case("phase-typo", {"hooks": {"logs.clean": {"befor": "true"}}},
         "hooks.logs.clean.befor: unknown key 'befor'; did you mean 'before'?", HOOK_TASKS),
    Case("list-with-a-number", {"hooks": {"backup.db": {"after": ["true", 5]}}},
         "hooks.backup.db.after[1]: expected text, got 5", HOOK_TASKS),
    Case("empty-command", {"hooks": {"backup.db": {"before": ""}}},
         "hooks.backup.db.before[0]: must not be empty", HOOK_TASKS),
    Case("on-group", {"hooks": {"db.vacum": {"before": "true"}}},
         "did you mean 'db.vacuum'?", HOOK_TASKS, on_group=True),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_hooks_are_refused_before_any_host_is_touched(tmp_path: Path, case: Case) -> None:
    """A typo in a task name or a hook of the wrong type stops every task at load, exit 2."""
    for task in case.tasks:
        assert_refused(tmp_path, case, task)


def test_hooks_name_exactly_the_tasks_that_run_on_hosts() -> None:
    """Every task that runs on hosts takes hooks, and no other name is accepted."""
    from maintenance.cli import backup, certs, db, health, jobs, logs, restore

    modules = (backup, certs, db, health, jobs, logs, restore)
    planned = {spec.name for module in modules for spec in module.SPECS if spec.plan is not None}
    names = {name.replace("-", "_") for name in build_namespace().task_names}
    assert set(HOST_TASKS) == planned
    assert planned <= names
    assert all(isinstance(spec, TaskSpec) for module in modules for spec in module.SPECS)


def _old_log(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    old = directory / "app.log.1"
    old.write_text("old lines\n")
    month_ago = time.time() - 40 * 86400
    os.utime(old, (month_ago, month_ago))
    return old


def _clean(tmp_path: Path, hooks: dict[str, Any], *flags: str) -> tuple[int, dict[str, Any]]:
    logs = tmp_path / "logs"
    host = {
        "ansible_connection": "local",
        "logs": [{"path": f"{logs}/*.log.*", "delete_after": "30d"}],
        "hooks": {"logs.clean": hooks},
    }
    inventory = write_inventory(tmp_path / "inventory.yaml", {"app1": host})
    done = run_maint_cli(["logs.clean", "-i", str(inventory), "--json", *flags])
    return done.returncode, json.loads(done.stdout)["results"][0]


def test_before_and_after_run_around_the_task_with_its_status(tmp_path: Path) -> None:
    """`before` runs first, the task runs, `after` runs with MAINT_STATUS=ok; output kept."""
    old = _old_log(tmp_path / "logs")
    trail = tmp_path / "trail"
    before = f"test -e {old} && echo scaled-down >> {trail}"
    after = f'echo "scaled-up $MAINT_STATUS $MAINT_TASK" >> {trail}; echo done'
    code, result = _clean(tmp_path, {"before": before, "after": [after]})
    assert code == 0 and result["status"] == "changed", result
    assert not old.exists()
    assert trail.read_text().splitlines() == ["scaled-down", "scaled-up ok logs.clean"]
    hooks = result["details"]["hooks"]
    assert [(h["phase"], h["exit_code"], h["output"]) for h in hooks] == [
        ("before", 0, ""),
        ("after", 0, "done"),
    ]


def test_a_failing_before_fails_the_host_without_running_the_task(tmp_path: Path) -> None:
    """The task does not run when `before` fails; `after` still runs, told it failed."""
    old = _old_log(tmp_path / "logs")
    trail = tmp_path / "trail"
    code, result = _clean(
        tmp_path,
        {
            "before": ["echo replicas still 2 >&2; exit 4", f"echo never >> {trail}"],
            "after": f'echo "after $MAINT_STATUS" >> {trail}',
        },
    )
    assert code == 1 and result["status"] == "failed"
    assert old.exists(), "the task ran although its before hook failed"
    assert trail.read_text() == "after failed\n"
    assert (
        "before hook `echo replicas still 2 >&2; exit 4` exited 4: replicas still 2"
        in (result["error"])
    )
    assert "logs.clean not run" in result["error"]


def test_a_failing_after_fails_the_host_but_keeps_the_tasks_work(tmp_path: Path) -> None:
    """An `after` that fails (the application not scaled back up) fails the host."""
    old = _old_log(tmp_path / "logs")
    code, result = _clean(tmp_path, {"after": "echo cannot scale >&2; false"})
    assert code == 1 and result["status"] == "failed"
    assert not old.exists()
    assert result["details"]["deleted"] == 1
    assert result["error"] == "after hook `echo cannot scale >&2; false` exited 1: cannot scale"


def test_dry_run_lists_the_hooks_and_runs_none(tmp_path: Path) -> None:
    """--dry-run names every hook it would run; none runs, nothing is deleted."""
    old = _old_log(tmp_path / "logs")
    trail = tmp_path / "trail"
    hooks = {"before": f"echo b >> {trail}", "after": f"echo a >> {trail}"}
    code, result = _clean(tmp_path, hooks, "--dry-run")
    assert code == 0 and old.exists() and not trail.exists()
    assert [(h["phase"], h["ran"]) for h in result["details"]["hooks"]] == [
        ("before", False),
        ("after", False),
    ]
    assert (
        f"hooks not run: before: echo b >> {trail}; after: echo a >> {trail}" in (result["summary"])
    )


def test_hooks_run_on_an_ssh_host_set_per_group(ssh_fleet, tmp_path: Path) -> None:
    """Hooks set on a group run on the host itself, over SSH, with MAINT_STATUS there."""
    host, user = ssh_fleet.hosts[0].name, ssh_fleet.hosts[0].user
    rules = [{"path": f"/home/{user}/hooks-test-*.log", "delete_after": "30d"}]
    hosts = {host: fleet_hosts(ssh_fleet)[host] | {"logs": rules}}
    hooks = {"logs.clean": {"before": "hostname >/dev/null && echo on $(id -un)",
                            "after": 'echo "status=$MAINT_STATUS host=$MAINT_HOST"'}}  # fmt: skip
    all_vars = fleet_vars(ssh_fleet) | {"hooks": hooks}
    inventory = write_inventory(tmp_path / "inventory.yaml", hosts, all_vars=all_vars)
    done = run_maint_cli(["logs.clean", "-i", str(inventory), "--json"])
    assert done.stdout, done.stderr
    result = json.loads(done.stdout)["results"][0]
    outputs = [(h["phase"], h["output"]) for h in result["details"]["hooks"]]
    assert result["status"] == "ok", result["error"]
    assert outputs == [("before", f"on {user}"), ("after", f"status=ok host={host}")]
