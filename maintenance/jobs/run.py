"""job.run's procedure: find the named job among a host's jobs and run it by its kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError
from ..inventory import Host
from ..results import Result, Status
from ..runners import Runner
from ..settings.jobs import Job
from ..settings.problems import closest
from .command import run_command_job
from .sql import run_sql_job


@dataclass(frozen=True)
class JobOptions:
    """Flags of job.run: the job's NAME and whether it only shows what it would do."""

    name: str
    dry_run: bool = False


def job_of(host: Host, name: str) -> Job | None:
    """HOST's job called NAME, if it defines one."""
    return next((job for job in host.settings.jobs if job.name == name), None)


def defining_hosts(hosts: Iterable[Host], name: str) -> list[Host]:
    """The hosts among HOSTS that define job NAME. Raise ConfigError when none does, with a
    did-you-mean over the names they define: a typo must stop before any host is touched."""
    hosts = list(hosts)
    defining = [host for host in hosts if job_of(host, name) is not None]
    if defining:
        return defining
    where = f"on {', '.join(host.name for host in hosts[:5])}" + (" ..." if len(hosts) > 5 else "")
    known = sorted({job.name for host in hosts for job in host.settings.jobs})
    if not known:
        raise ConfigError(f"no job {name!r} {where}: they define no jobs")
    guess = closest(name, known, within=3)
    hint = f"; did you mean {guess!r}?" if guess else f" (jobs: {', '.join(known)})"
    raise ConfigError(f"no job {name!r} {where}{hint}")


def run_job(host: Host, runner: Runner, options: JobOptions) -> Result:
    """Run HOST's job OPTIONS.name; skip a host that does not define it."""
    job = job_of(host, options.name)
    if job is None:
        return Result(
            host.name,
            Status.SKIPPED,
            details={"job": options.name},
            summary=f"no job {options.name!r} on this host",
        )
    if job.sql is not None:
        return run_sql_job(host, runner, job, options.dry_run)
    return run_command_job(host, runner, job, options.dry_run)
