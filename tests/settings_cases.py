"""Broken inventories fed through the real `maint` command, as a user would meet them.

Each case is one inventory mistake and the tasks that read the section it breaks. Every task
must refuse it before touching any host: exit 2 (3 for the monitoring checks), a message that
names the host or group and the dotted key path, no traceback, and the local host's backup
directory and log tree left exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.maint_cli import Run, run_maint_cli

CHECKS = {"health.check", "certs.check"}


@dataclass(frozen=True)
class Case:
    """VARS set on host `db1` (or on group `databases` when ON_GROUP) and what must be said.

    A case with no VARS but ALL_VARS (the scheduler's keys) is said for group 'all'.
    """

    id: str
    vars: dict[str, Any]
    says: str  # a fragment of the message: the key path and what was wrong
    tasks: tuple[str, ...]
    on_group: bool = False
    all_vars: dict[str, Any] = field(default_factory=dict)


def write_case_inventory(tmp_path: Path, case: Case) -> Path:
    """db1 and db2 on the local connection, in group `databases`, with CASE's vars."""
    store = tmp_path / "store"
    base = {"ansible_connection": "local", "backup": {"store": str(store)}}
    db1 = {**base, **({} if case.on_group else case.vars)}
    document = {
        "all": {
            "vars": case.all_vars,
            "children": {
                "databases": {
                    "vars": case.vars if case.on_group else {},
                    "hosts": {"db1": db1, "db2": dict(base)},
                }
            },
        }
    }
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def task_args(task: str) -> list[str]:
    """The arguments a user would give TASK; destructive ones are not dry runs on purpose."""
    extra = {
        "db.purge": ["--table", "events", "--column", "created_at", "--older-than", "30d"],
        "restore.db": [
            "--backup",
            "db1/app/20250101T000000Z.dump.zst",
            "--target",
            "db1",
            "--database",
            "app",
            "--force",
            "--yes",
        ],
    }
    return [task, *extra.get(task, [])]


def assert_refused(tmp_path: Path, case: Case, task: str) -> Run:
    """`maint TASK` on CASE's inventory, in this process: the refusal happens before any host
    is reached, so a new interpreter per case would only add its start-up."""
    path = write_case_inventory(tmp_path, case)
    done = run_maint_cli([*task_args(task), "-i", str(path)])
    expected = 3 if task in CHECKS else 2
    where = "group 'databases'" if case.on_group else "host 'db1'"
    if case.all_vars and not case.vars:
        where = "group 'all'"
    assert done.returncode == expected, (task, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    assert where in done.stderr and case.says in done.stderr, done.stderr
    assert str(path) in done.stderr, done.stderr
    assert not (tmp_path / "store").exists(), "something was written before the refusal"
    return done
