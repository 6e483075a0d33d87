"""Tasks of the `job` namespace: job.run runs one of the inventory's named jobs.

maintenance.jobs (and psycopg with it) is imported inside the plan: see common.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ..errors import ConfigError
from ..inventory import Host, Inventory
from ..limits import select_hosts
from .spec import Flag, Plan, TaskSpec, collection, dry_run


def _run(flags: SimpleNamespace) -> Plan:
    from ..jobs import JobOptions, defining_hosts, run_job

    if not flags.name:
        raise ConfigError("--name is required: the job to run, as the host's `jobs` names it")
    options = JobOptions(name=flags.name, dry_run=flags.dry_run)

    def made(loaded: Inventory) -> JobOptions:
        """OPTIONS, once some selected host is known to define the job (else ConfigError)."""
        hosts = select_hosts(loaded, flags.limit)
        try:
            defining_hosts(hosts, flags.name)
        except ConfigError as exc:
            raise ConfigError(f"--name: {exc}") from None
        return options

    return Plan(run_job, options, make_options=made, validate=_validate)


def _validate(host: Host, options: Any) -> None:
    """Refuse, before any host runs, a host whose SQL job has no server to run on."""
    from .. import pg
    from ..jobs import job_of

    job = job_of(host, options.name)
    if job is not None and job.sql is not None:
        pg.host_dsn(host)


SPECS = (
    TaskSpec(
        "job.run",
        """Run a named job of the inventory's `jobs`: an SQL statement or a command.

        On each selected host that defines it (the others are skipped). An SQL job runs in one
        transaction under its statement_timeout and lock_timeout, and is rolled back (failing
        the host) when it would change more than max_rows rows; details.rows says how many.
        A command job runs on the host; details.exit_code says how it ended.
        """,
        flags=(
            # Not a positional flag: invoke would take `job.run --help` as the name.
            Flag("name", "the job's name, as the host's `jobs` list gives it (required)"),
            dry_run(
                "SQL: run the statement, report the rows it would change, roll back; "
                "command: print it and run nothing"
            ),
        ),
        plan=_run,
    ),
)

namespace = collection("job", SPECS)
