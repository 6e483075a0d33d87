"""Tasks of the `health` namespace."""

from invoke import Collection

from ..executor import DEFAULT_FORKS
from .common import run_task, task, task_help


@task(
    name="check",
    help=task_help(
        disk_path="filesystem to check (repeatable; default: the host's health.disk_paths, else /)",
        long_query_seconds="a query running longer than this counts as long: seconds, or a "
        "duration like 10min (overrides health.long_query_seconds)",
    ),
    iterable=["disk_path"],
)
def check(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    disk_path=None,
    long_query_seconds=None,
):
    """Check disk space and PostgreSQL (connections, long queries, idle transactions) per host.

    Exit codes follow monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    """
    from ..health import HealthOptions, check_host, host_health
    from ..monitoring import exit_code

    options = HealthOptions(disk_paths=disk_path or None, long_query_seconds=long_query_seconds)
    run_task(
        "health.check",
        check_host,
        options,
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        code_for=exit_code,
        usage_code=3,
        validate=host_health,
    )


namespace = Collection("health", check)
