"""Every product key of one host, after Ansible's merge: the one typed view tasks read.

Top-level vars that are not the product's belong to Ansible and are left alone, except one
that is a likely typo of a product key (`bakup`, `helth`): that one is refused, because the
section it was meant to configure would silently fall back to its defaults.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from .backup import BackupSettings, RestoreCheck, RestoreSettings
from .certs import CertsSettings
from .health import HealthSettings
from .logs import LogRule
from .postgres import PostgresSettings
from .problems import closest, edit_distance
from .scheduler import MetricsSettings, NotifySettings, SchedulerSettings
from .types import Section, Text, Timeout


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
        default_factory=list, description="SQL checks restore.verify runs in the restored copy"
    )
    health: HealthSettings = Field(default_factory=HealthSettings)
    logs: list[LogRule] = Field(default_factory=list)
    certs: CertsSettings | None = None
    schedule: list[Any] | None = None
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    state_dir: str | None = None
    state_dsn: str | None = None
    connect_timeout: Timeout = Field(10, description="SSH connect timeout")
    command_timeout: Timeout | None = Field(None, description="a single command's limit")
    host_timeout: Timeout | None = Field(None, description="a host's whole procedure's limit")
    ssh_known_hosts: str | list[str] | None = None


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
