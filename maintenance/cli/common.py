"""What every task does around its procedure: inventory, --limit, fan-out, report, exit code."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from invoke.exceptions import Exit

from ..errors import ConfigError
from ..executor import DEFAULT_FORKS, Procedure, run_procedure
from ..inventory import Host, load_inventory
from ..limits import select_hosts
from ..logconfig import configure_logging
from ..reporting import EXIT_USAGE, emit, exit_code
from ..results import Result

DEFAULT_INVENTORY = "inventory.yaml"

COMMON_HELP = {
    "inventory": "inventory file (default: $MAINT_INVENTORY, else ./inventory.yaml)",
    "limit": "host pattern: names, groups, globs, a:b union, a:&b intersection, a:!b exclusion",
    "json": "print one JSON document on stdout (logs stay on stderr)",
    "forks": f"hosts worked on at once (default {DEFAULT_FORKS})",
}


def task_help(**specific: str) -> dict[str, str]:
    """Help for a task's flags: the common ones plus its own."""
    return {**COMMON_HELP, **specific}


def inventory_path(flag: str | None) -> str:
    return flag or os.environ.get("MAINT_INVENTORY") or DEFAULT_INVENTORY


def selected_hosts(inventory: str | None, limit: str | None) -> list[Host]:
    """Load the inventory and apply --limit. Raise ConfigError on any problem."""
    return select_hosts(load_inventory(inventory_path(inventory)), limit)


def run_task(
    task: str,
    procedure: Procedure,
    options: Any,
    *,
    inventory: str | None,
    limit: str | None,
    json: bool,
    forks: int,
    code_for: Callable[[Sequence[Result]], int] = exit_code,
    usage_code: int = EXIT_USAGE,
) -> list[Result]:
    """Run PROCEDURE over the selected hosts, print the report and exit with the task's code.

    Bad input exits USAGE_CODE with one message and no traceback.
    """
    configure_logging()
    try:
        hosts = selected_hosts(inventory, limit)
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=usage_code) from None
    results = run_procedure(task, procedure, hosts, options, forks=forks)
    emit(task, results, as_json=json)
    code = code_for(results)
    if code:
        raise Exit(code=code)
    return results
