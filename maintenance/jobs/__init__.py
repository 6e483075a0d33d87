"""Named jobs of the inventory's `jobs` key, run by `maint job.run --name NAME`.

An SQL job runs one statement in a transaction on the host's PostgreSQL; a command job runs
on the host through its runner. Both are plain procedures, so the scheduler runs them as any
other task.
"""

from .run import JobOptions, defining_hosts, job_of, run_job

__all__ = ["JobOptions", "defining_hosts", "job_of", "run_job"]
