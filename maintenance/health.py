"""health.check: disk space on the host and the state of its PostgreSQL server.

Every check yields a monitoring state; the host's state is the worst of them, and the task's
exit code the worst over hosts (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any

import psycopg

from backups.freshness import backup_freshness

from . import pg
from .errors import MaintError
from .inventory import Host
from .results import Result, Status
from .runners import Runner
from .units import format_duration, parse_duration

DEFAULTS: dict[str, Any] = {
    "disk_paths": ["/"],
    "disk_warn_free_pct": 20,
    "disk_crit_free_pct": 10,
    "connections_warn_pct": 80,
    "connections_crit_pct": 90,
    "long_query_seconds": 300,
    "long_query_warn": 1,
    "long_query_crit": 5,
    "idle_in_transaction_seconds": 600,
    "idle_in_transaction_warn": 1,
    "idle_in_transaction_crit": 5,
    "backup_warn_age": "26h",
    "backup_crit_age": "50h",
    "drill_warn_age": "8d",
    "drill_crit_age": "15d",
}


class State(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Check:
    name: str
    state: State
    message: str
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.name,
            "message": self.message,
            "value": self.value,
        }


def settings(host: Host, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Thresholds for HOST: defaults < the host's `health` vars < command-line overrides."""
    merged = {
        **DEFAULTS,
        **(host.var("health") or {}),
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    if isinstance(merged["disk_paths"], str):
        merged["disk_paths"] = [merged["disk_paths"]]
    return merged


def grade_low(value: float, warn: float, crit: float) -> State:
    """State for a value where less is worse (free space)."""
    return State.CRITICAL if value <= crit else State.WARNING if value <= warn else State.OK


def grade_high(value: float, warn: float, crit: float) -> State:
    """State for a value where more is worse (connections, stuck sessions)."""
    return State.CRITICAL if value >= crit else State.WARNING if value >= warn else State.OK


_SECTION = "--maint-df-section--"


def disk_checks(runner: Runner, config: dict[str, Any]) -> list[Check]:
    """One check per path, from a single round trip running `df -P -k` once per path."""
    paths = [str(path) for path in config["disk_paths"]]
    script = "; ".join(f"df -P -k -- {shlex.quote(path)} 2>&1; echo {_SECTION}" for path in paths)
    sections = runner.run(script).stdout.split(_SECTION + "\n")
    return [
        _disk_check(path, section, config) for path, section in zip(paths, sections, strict=False)
    ]


def _disk_check(path: str, df_output: str, config: dict[str, Any]) -> Check:
    lines = df_output.strip().splitlines()
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 6 or not (fields[2].isdigit() and fields[3].isdigit()):
        return Check(f"disk {path}", State.UNKNOWN, f"cannot read free space: {df_output.strip()}")
    used, available = int(fields[2]), int(fields[3])
    free_pct = 100.0 * available / max(1, used + available)
    message = f"{free_pct:.1f}% free ({available // 1024} MiB) on {fields[5]}"
    return Check(
        f"disk {path}",
        grade_low(free_pct, config["disk_warn_free_pct"], config["disk_crit_free_pct"]),
        message,
        round(free_pct, 2),
    )


_ACTIVITY_SQL = """
SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  current_setting('max_connections')::int,
  (SELECT count(*) FROM pg_stat_activity
    WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()
      AND now() - query_start > make_interval(secs => %(long_s)s)),
  (SELECT count(*) FROM pg_stat_activity
    WHERE state LIKE 'idle in transaction%%'
      AND now() - state_change > make_interval(secs => %(idle_s)s)),
  current_setting('server_version')
"""


def postgres_checks(host: Host, runner: Runner, config: dict[str, Any]) -> list[Check]:
    """Connections vs max_connections, long queries, idle-in-transaction sessions, version."""
    try:
        with pg.reach(host, runner, "health.check") as server, server.connect() as connection:
            row = connection.execute(
                _ACTIVITY_SQL,
                {
                    "long_s": config["long_query_seconds"],
                    "idle_s": config["idle_in_transaction_seconds"],
                },
            ).fetchone()
    except (MaintError, psycopg.Error) as exc:
        return [Check("postgres", State.CRITICAL, str(exc))]
    assert row is not None
    used, maximum, long_running, idle_in_tx, version = row
    used_pct = 100.0 * used / max(1, maximum)
    return [
        Check(
            "postgres connections",
            grade_high(used_pct, config["connections_warn_pct"], config["connections_crit_pct"]),
            f"{used}/{maximum} connections ({used_pct:.0f}%)",
            round(used_pct, 2),
        ),
        Check(
            "postgres long queries",
            grade_high(long_running, config["long_query_warn"], config["long_query_crit"]),
            f"{long_running} running longer than {config['long_query_seconds']}s",
            long_running,
        ),
        Check(
            "postgres idle in transaction",
            grade_high(
                idle_in_tx, config["idle_in_transaction_warn"], config["idle_in_transaction_crit"]
            ),
            f"{idle_in_tx} idle in transaction over {config['idle_in_transaction_seconds']}s",
            idle_in_tx,
        ),
        Check("postgres version", State.OK, f"PostgreSQL {version}", version),
    ]


def freshness_checks(host: Host, config: dict[str, Any]) -> list[Check]:
    """Age of the newest complete backup and newest passing drill of each database."""
    try:
        ages = backup_freshness(host, datetime.now(UTC))
    except MaintError as exc:
        return [Check("backups", State.UNKNOWN, f"cannot read the backup store: {exc}")]
    checks = []
    for age in ages:
        checks.append(
            _age_check(
                f"backup {age.database}",
                "complete backup",
                age.backup_age,
                config["backup_warn_age"],
                config["backup_crit_age"],
            )
        )
        checks.append(
            _age_check(
                f"drill {age.database}",
                "passing restore drill",
                age.drill_age,
                config["drill_warn_age"],
                config["drill_crit_age"],
            )
        )
    return checks


def _age_check(name: str, what: str, age: timedelta | None, warn: Any, crit: Any) -> Check:
    if age is None:
        return Check(name, State.CRITICAL, f"no {what} found")
    warn_s = parse_duration(warn, f"key 'health.{name.split()[0]}_warn_age'").total_seconds()
    crit_s = parse_duration(crit, f"key 'health.{name.split()[0]}_crit_age'").total_seconds()
    seconds = age.total_seconds()
    state = grade_high(seconds, warn_s, crit_s)
    return Check(name, state, f"newest {what} is {format_duration(seconds)} old", round(seconds))


def check_host(host: Host, runner: Runner, overrides: dict[str, Any] | None) -> Result:
    """Run every health check on HOST; the Result's details carry each check and the worst state."""
    config = settings(host, overrides)
    checks = disk_checks(runner, config)
    if host.settings.postgres.dsn:
        checks += postgres_checks(host, runner, config)
    if "backup" in host.settings.model_fields_set:  # set in vars, not only defaulted
        checks += freshness_checks(host, config)
    worst = max((check.state for check in checks), default=State.OK)
    problems = [f"{check.name}: {check.message}" for check in checks if check.state != State.OK]
    summary = f"{worst.name}: " + (
        "; ".join(problems) if problems else f"{len(checks)} checks passed"
    )
    status = Status.FAILED if worst >= State.CRITICAL else Status.OK
    details = {"state": worst.name, "checks": [check.to_dict() for check in checks]}
    return Result(
        host.name,
        status,
        details=details,
        summary=summary,
        error=summary if status == Status.FAILED else None,
    )


def monitoring_exit_code(results: list[Result]) -> int:
    """Worst state over hosts; an unreachable host is UNKNOWN (3)."""
    worst = State.OK
    for result in results:
        if result.status == Status.UNREACHABLE:
            state = State.UNKNOWN
        else:
            state = State[result.details.get("state", "CRITICAL")]
        worst = max(worst, state)
    return int(worst)
