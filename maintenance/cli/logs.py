"""Tasks of the `logs` namespace: logs.clean."""

from __future__ import annotations

from types import SimpleNamespace

from .spec import Plan, TaskSpec, collection, dry_run

FILE_COLUMNS = ("action", "reason", "size", "path")
RULE_COLUMNS = ("rule", "files", "compressed", "deleted", "freed", "error")


def _clean(flags: SimpleNamespace) -> Plan:
    from ..logs import CleanOptions, clean_host

    return Plan(
        clean_host,
        CleanOptions(dry_run=flags.dry_run),
        columns=FILE_COLUMNS if flags.dry_run else RULE_COLUMNS,
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
)

namespace = collection("logs", SPECS)
