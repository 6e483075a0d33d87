"""Every product key of one host, after Ansible's merge: the one typed view tasks read.

Top-level vars that are not the product's belong to Ansible and are left alone, except one
that is a likely typo of a product key (`bakup`, `helth`): that one is refused, because the
section it was meant to configure would silently fall back to its defaults.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from .backup import BackupSettings, RestoreCheck, RestoreSettings
from .certs import CertsSettings, list_form_schema
from .health import HealthSettings
from .hooks import Hooks
from .jobs import Jobs
from .logs import LogRule
from .postgres import Dsn, PostgresSettings
from .problems import closest, edit_distance
from .report import ReportSettings
from .scheduler import MetricsSettings, NotifySettings, ScheduleJob, SchedulerSettings
from .types import OneOrMany, Section, Text, Timeout

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")


class HostSettings(Section):
    """A host's settings; every section has its defaults, so an empty host is valid."""

    model_config = ConfigDict(extra="allow", frozen=True)

    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    restore: RestoreSettings = Field(default_factory=RestoreSettings)
    restore_target: Text | None = Field(
        None,
        description="restore.verify drills this host's backups on that inventory host",
        examples=["staging-db1"],
    )
    restore_checks: list[RestoreCheck] = Field(
        default_factory=list,
        description="SQL checks restore.verify and restore.db run in the restored copy",
    )
    health: HealthSettings = Field(default_factory=HealthSettings)
    report: ReportSettings = Field(
        default_factory=ReportSettings,
        description="what `maint report` judges each backup against: rpo, drill_max_age, rto",
    )
    hooks: Hooks = Field(
        default_factory=dict,
        description="commands run on the host around a task, {TASK: {before: CMD, after: CMD}} "
        "(a command or a list): a failing before fails the host without the task; after "
        "always runs, with MAINT_STATUS=ok|failed (docs/hooks.md)",
        examples=[
            {
                "restore.db": {
                    "before": "kubectl scale deploy/app --replicas=0",
                    "after": "kubectl scale deploy/app --replicas=2",
                }
            }
        ],
    )
    logs: list[LogRule] = Field(
        default_factory=list,
        description="logs.clean's and logs.rotate's rules: compress, delete, cap and rotate "
        "log files, or import a host's logrotate file",
    )
    certs: CertsSettings | None = Field(None, json_schema_extra=list_form_schema)
    jobs: Jobs = Field(
        default_factory=list,
        description="named jobs `maint job.run --name NAME` runs: an SQL statement or a command",
        examples=[[{"name": "purge-dlq", "command": "rabbitmqadmin purge queue name=dlq"}]],
    )
    schedule: list[ScheduleJob] | None = Field(
        None,
        description="the scheduler's jobs (in all.vars); unset: the default runbook schedule",
        examples=[[{"task": "backup.db", "every": "day", "at": "02:00"}]],
    )
    scheduler: SchedulerSettings = Field(
        default_factory=SchedulerSettings, description="the scheduler daemon's own settings"
    )
    notify: NotifySettings = Field(
        default_factory=NotifySettings, description="the scheduler's failure alerts"
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings, description="Prometheus metrics of tasks and jobs"
    )
    state_dir: Text | None = Field(
        None,
        description="the scheduler's run history (SQLite) directory; $MAINT_STATE_DIR "
        "wins, default $XDG_STATE_HOME/maint",
    )
    state_dsn: Dsn | None = Field(
        None,
        description="PostgreSQL DSN for the run history instead, shared by several daemons "
        "(a secret: shown masked)",
        examples=["postgresql://maint@db1/maint"],
    )
    connect_timeout: Timeout = Field(
        10, gt=0, description="seconds (or a duration) to connect and log in over SSH"
    )
    command_timeout: Timeout | None = Field(
        None,
        description="stop any one command on the host past this long; unset or 0: none",
        examples=["30min"],
    )
    host_timeout: Timeout | None = Field(
        None,
        description="fail a host whose whole task runs past this long; unset or 0: none",
        examples=["10min", "2h"],
    )
    ssh_known_hosts: OneOrMany = Field(
        list(DEFAULT_KNOWN_HOSTS),
        description="known_hosts file(s) SSH host keys are checked against",
        examples=["~/.ssh/known_hosts", ["/etc/maint/known_hosts"]],
    )
    ansible_host_key_checking: bool = Field(
        True, description="false accepts any SSH host key without recording it (a lab only)"
    )


def near_miss(key: str) -> str | None:
    """The product key KEY is a likely typo of, if any.

    Short keys allow one edit only: at two edits `logs` would claim Ansible's `tags` and `jobs`.
    """
    if key in HostSettings.model_fields or key.startswith("ansible_"):
        return None
    guess = closest(key, HostSettings.model_fields, within=2)
    if guess is None:
        return None
    allowed = 1 if len(guess) <= 5 else 2
    return guess if edit_distance(key.lower(), guess.lower()) <= allowed else None
