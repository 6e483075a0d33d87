"""Tasks of the `logs` namespace: logs.clean."""

from invoke import Collection

from ..executor import DEFAULT_FORKS
from .common import run_task, task, task_help

FILE_COLUMNS = ("action", "reason", "size", "path")
RULE_COLUMNS = ("rule", "files", "compressed", "deleted", "freed", "error")


@task(
    name="clean",
    help=task_help(dry_run="list every file and the action it would get, and change nothing"),
)
def clean(c, inventory=None, limit=None, json=False, forks=DEFAULT_FORKS, dry_run=False):
    """Compress old logs, delete older ones and cap their size, per the hosts' `logs` rules.

    Files modified within a rule's min_age, symbolic links and anything outside a rule's
    base directory are never touched. Each rule is one listing and one batch of actions on
    the host, however many files it has.
    """
    from ..logs import CleanOptions, clean_host

    run_task(
        "logs.clean",
        clean_host,
        CleanOptions(dry_run=dry_run),
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        columns=FILE_COLUMNS if dry_run else RULE_COLUMNS,
    )


namespace = Collection("logs", clean)
