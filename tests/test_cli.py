"""The command line as users meet it: `maint` and `invoke` list the same tasks, clear errors.

Start-up itself (the installed script, --help, bytecode caching) runs the real command; the
error paths run in this process through the same entry point.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.maint_cli import run_maint_cli

REPO = Path(__file__).resolve().parent.parent


def test_maint_lists_tasks_from_any_directory(tmp_path: Path) -> None:
    done = subprocess.run(["maint", "--list"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0
    assert "health.check" in done.stdout


def test_invoke_in_repo_root_lists_the_same_tasks() -> None:
    maint = subprocess.run(["maint", "--list"], capture_output=True, text=True, cwd=REPO)
    invoke = subprocess.run(["invoke", "--list"], capture_output=True, text=True, cwd=REPO)
    assert invoke.returncode == 0, invoke.stderr

    def names(text: str) -> list[str]:
        return [line.split()[0] for line in text.splitlines() if line.startswith("  ")]

    assert names(maint.stdout) == names(invoke.stdout)
    assert names(maint.stdout)


@pytest.mark.parametrize("name", ["db.unused_indexes", "db.unused-indexes"])
def test_maint_takes_both_spellings_of_a_task_name(name: str) -> None:
    done = subprocess.run(["maint", name, "--help"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "db.unused-indexes" in done.stdout and "--database" in done.stdout


@pytest.mark.parametrize("args", [["health.check", "--forks", "x"], ["db.bloat", "--top", "x"]])
def test_number_flag_with_a_word_exits_2_without_traceback(args: list[str]) -> None:
    done = run_maint_cli(args)
    assert done.returncode == 2
    assert "expected a whole number, got 'x'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("all:\n  hosts:\n    db1: [a]\n", "host 'db1': expected a mapping of vars, got a list"),
        ("all:\n  hosts:\n    db1: {ansible_connection: rsh}\n", "unknown connection type 'rsh'"),
        ("all:\n  hosts:\n    db1: {ansible_port: abc}\n", "expected a port number, got 'abc'"),
        ("all: [\n", "YAML syntax error"),
    ],
)
def test_bad_inventory_gives_message_and_no_traceback(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    done = run_maint_cli(["health.check", "-i", str(path)])
    assert done.returncode == 3  # health.check speaks the monitoring convention: UNKNOWN
    assert message in done.stderr and str(path) in done.stderr
    assert "Traceback" not in done.stderr


def test_maint_caches_bytecode_of_modules_it_imports_late(tmp_path: Path) -> None:
    """Task modules load after the command line is parsed; their bytecode must be cached
    like the rest, or every run compiles them again."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("all:\n  hosts:\n    here: {ansible_connection: local}\n")
    cache = tmp_path / "pycache"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    done = subprocess.run(
        ["maint", "logs.clean", "-i", str(inventory)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert list(cache.rglob("maintenance/logs/clean.*.pyc"))


def test_inventory_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.yaml"
    path.write_text("all:\n  hosts:\n    here: {ansible_connection: local}\n")
    done = run_maint_cli(
        ["health.check", "--json"], cwd=tmp_path, env={**os.environ, "MAINT_INVENTORY": str(path)}
    )
    assert '"host": "here"' in done.stdout


@pytest.mark.parametrize(("task", "code"), [("backup.list", 2), ("health.check", 3)])
def test_forks_below_one_is_refused_with_the_task_s_usage_code(task: str, code: int) -> None:
    done = run_maint_cli([task, "--forks", "0", "-i", str(REPO / "inventory.yaml")])
    assert done.returncode == code, done.stderr
    assert "--forks: expected at least 1, got 0" in done.stderr and "Traceback" not in done.stderr
