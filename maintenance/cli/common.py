"""What every task does around its procedure: inventory, --limit, fan-out, report, exit code.

Task modules import their procedures inside the task body, not at the top: `maint` builds
the whole task tree at every start, and a `maint logs.clean` from cron should not pay for
boto3, psycopg and cryptography that only other namespaces use (start-up went from about
0.5 s to 0.25 s here).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from invoke import Task
from invoke.exceptions import Exit

from ..errors import ConfigError
from ..executor import DEFAULT_FORKS, Procedure, run_procedure
from ..inventory import Host, Inventory, load_inventory
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


class MaintTask(Task):
    """invoke's Task without the '-' short flag it makes up once a name's letters are taken.

    invoke gives such a flag the short form '-', which `--help` shows as `--=STRING` (e.g.
    backup.prune's --keep-weekly): a flag nobody can type. Every task of `maint` is made of
    this class by spec.make_task.
    """

    # Reads a command line as the task does (against the inventory, if given) and raises
    # ConfigError for a bad flag, running nothing (spec.flag_check): the scheduler checks a
    # job's args with it when it loads.
    check_args: Callable[[Sequence[str], Inventory | None], None] | None = None

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        if "-" in opts["names"]:
            opts["names"].remove("-")
            # Still taken, as invoke would have it: the flags after this one keep the
            # short forms they always had (-m, -w, -y of backup.prune).
            taken_names.add("-")
        return opts


def inventory_path(flag: str | None) -> str:
    return flag or os.environ.get("MAINT_INVENTORY") or DEFAULT_INVENTORY


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
    columns: Sequence[str] = (),
    validate: Callable[[Host, Any], object] | None = None,
    make_options: Callable[[Inventory], Any] | None = None,
    dry_run: bool = False,
) -> list[Result]:
    """Run PROCEDURE over the selected hosts, print the report and exit with the task's code.

    MAKE_OPTIONS builds the options from the whole inventory when a procedure needs more than
    its own host (a restore target). DRY_RUN lists the hosts' hooks instead of running them.
    VALIDATE checks each host's vars with those options before
    anything runs anywhere; bad input exits USAGE_CODE with one message and no traceback.
    """
    configure_logging()
    try:
        loaded = load_inventory(inventory_path(inventory))
        hosts = select_hosts(loaded, limit)
        if make_options is not None:
            options = make_options(loaded)
        problems = _problems(hosts, options, validate) if validate else []
        if problems:
            raise ConfigError("\n  ".join(["invalid configuration:", *problems]))
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=usage_code) from None
    from ..scheduler.textfile import write_if_asked as write_textfile_if_asked

    results = run_procedure(task, procedure, hosts, options, forks=forks, dry_run=dry_run)
    write_textfile_if_asked(task, hosts, results)  # metrics.textfile_dir var; never fails
    emit(task, results, as_json=json, columns=columns)
    code = code_for(results)
    if code:
        raise Exit(code=code)
    return results


def _problems(
    hosts: Sequence[Host], options: Any, validate: Callable[[Host, Any], object]
) -> list[str]:
    """Every host's configuration problem, so one run reports them all."""
    problems = []
    for host in hosts:
        try:
            validate(host, options)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems
