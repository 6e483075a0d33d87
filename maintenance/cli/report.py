"""The `report` task: one page that says whether every database can be restored, and how fast.

It reads what backups, drills and the scheduler recorded; no host or database server is
contacted. Exit 0 once the report is written, whatever its colours (health.check is the
command that alerts); 2 for bad input (inventory, --limit, an output path that cannot be
written).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

from invoke.exceptions import Exit

from ..errors import ConfigError
from ..logconfig import configure_logging
from ..reporting import EXIT_USAGE
from .common import inventory_path
from .spec import Flag, TaskSpec, make_task

DEFAULT_OUTPUT = "maint-report.html"


def _report(flags: SimpleNamespace) -> None:
    from ..inventory import load_inventory
    from ..limits import select_hosts
    from ..report import fleet_report, render_html
    from .schedule import _settings as schedule_settings  # the schedule, state database

    configure_logging()
    settings = schedule_settings(flags.inventory, check_args=False)
    try:
        hosts = select_hosts(load_inventory(inventory_path(flags.inventory)), flags.limit)
    except ConfigError as exc:
        raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
    report = fleet_report(hosts, settings)
    if flags.json:
        print(json.dumps(report.to_dict(), indent=2))
    if flags.output is not None or not flags.json:
        path = Path(flags.output or DEFAULT_OUTPUT)
        _write(path, render_html(report))
        if not flags.json:
            print(path)


def _write(path: Path, text: str) -> None:
    """Write TEXT to PATH whole or not at all (a reader never sees half a page). Exit 2 if
    PATH cannot be written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise Exit(f"error: --output {path}: {exc.strerror}", code=EXIT_USAGE) from None


SPEC = TaskSpec(
    "report",
    """Write one HTML page showing whether each database can be restored, and how fast.

    One row per host and database (or backup source): newest backup against `report.rpo`,
    size and duration trends, newest passing drill and its restore time against
    `report.drill_max_age` and `report.rto`, green/amber/red with the reason. Prints the
    file's path; --json prints the same data instead (and writes the page only with
    --output). Exit 0 whatever the colours, 2 for bad input. See docs/report.md.
    """,
    common=("inventory", "limit", "json"),
    flags=(Flag("output", f"where to write the page (default ./{DEFAULT_OUTPUT})"),),
    action=_report,
)

task = make_task(SPEC)
