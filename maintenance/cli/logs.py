"""Tasks of the `logs` namespace: logs.clean and logs.rotate."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from .spec import Flag, Plan, TaskSpec, collection, dry_run

FILE_COLUMNS = ("action", "reason", "size", "path")
RULE_COLUMNS = ("rule", "files", "compressed", "deleted", "freed", "error")
ROTATE_STEP_COLUMNS = ("rule", "action", "detail")
ROTATE_RULE_COLUMNS = ("rule", "files", "rotated", "failed", "postrotate", "error")


def _clean(flags: SimpleNamespace) -> Plan:
    from ..logs import CleanOptions, clean_host

    return Plan(
        clean_host,
        CleanOptions(dry_run=flags.dry_run),
        columns=FILE_COLUMNS if flags.dry_run else RULE_COLUMNS,
    )


def _rotate(flags: SimpleNamespace) -> Plan:
    from ..limits import select_hosts
    from ..logs import Imports, RotateOptions, check_imports, rotate_host

    def options(inventory: Any) -> RotateOptions:
        imports = Imports(lambda: select_hosts(inventory, flags.limit), flags.forks)
        return RotateOptions(imports, dry_run=flags.dry_run, force=flags.force)

    return Plan(
        rotate_host,
        make_options=options,
        validate=check_imports,
        columns=ROTATE_STEP_COLUMNS if flags.dry_run else ROTATE_RULE_COLUMNS,
    )


SPECS = (
    TaskSpec(
        "logs.clean",
        """Compress old logs, delete older ones and cap their size, per the hosts' `logs` rules.

        Files modified within a rule's min_age, symbolic links and anything outside a rule's
        base directory are never touched. Each rule is one listing and one batch of actions on
        the host, however many files it has.
        """,
        flags=(dry_run("list every file and the action it would get, and change nothing"),),
        plan=_clean,
    ),
    TaskSpec(
        "logs.rotate",
        """Rotate live logs as logrotate does, per the hosts' rotation rules and logrotate files.

        Per host: one listing with the rotation state, one journal carrying out every rename,
        compression, create, truncate and postrotate; an interrupted run is finished by the
        next. Files named in `logrotate:` entries are read on every host before any changes.
        """,
        flags=(
            dry_run("list each file's planned renames and commands, and change nothing"),
            Flag("force", "rotate whatever the cadence and size (as logrotate -f)", False),
        ),
        plan=_rotate,
    ),
)

namespace = collection("logs", SPECS)
