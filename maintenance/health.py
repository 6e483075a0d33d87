"""health.check: disk space on the host, the state of its PostgreSQL server, backup freshness,
and the host's probes of the services around it (maintenance.probes).

Every check yields a monitoring state (maintenance.monitoring); the host's state is the worst
of them, and the task's exit code the worst over hosts (0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN). Thresholds come from the host's typed `health` settings, with the command line's
values put in place and validated the same way.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from backups.archive.catalog import CLOCK_SKEW
from backups.archive.freshness import Lag, backup_freshness
from backups.sources import unit_kinds

from .errors import ConfigError, MaintError
from .inventory import Host
from .monitoring import Check, State, grade_high, grade_low, host_result, worst
from .probes import ProbeContext, start_probes
from .results import Result
from .runners import Runner
from .settings.flags import flag_error, overridden
from .settings.health import HealthSettings
from .units import format_duration


@dataclass(frozen=True)
class HealthOptions:
    """Command-line values as given; None leaves the host's `health` settings in charge."""

    disk_paths: list[str] | None = None
    long_query_seconds: str | float | None = None


def host_health(host: Host, options: HealthOptions | None = None) -> HealthSettings:
    """HOST's `health` settings with the command line's values in place. Raise ConfigError
    for a value the settings would refuse (a bad var was refused when the inventory loaded)
    or an sql probe without a server to ask."""
    flags = asdict(options or HealthOptions())
    given = {key: value for key, value in flags.items() if value is not None}
    settings = host.settings.health
    if given:
        try:
            settings = overridden(host.settings.health, given)
        except ValidationError as exc:
            raise flag_error(exc, HealthSettings, host=host.name, section="health") from None
    _sql_has_a_server(host, settings)
    return settings


def _sql_has_a_server(host: Host, settings: HealthSettings) -> None:
    """Refuse, before any host is touched, an sql probe on a host without postgres.dsn."""
    if host.settings.postgres.dsn:
        return
    for index, probe in enumerate(settings.probes):
        if probe.kind == "sql":
            raise ConfigError(
                f"host {host.name!r}: health.probes[{index}] ({probe.name}): an sql probe "
                "queries the host's server: postgres.dsn is not set"
            )


_SECTION = "--maint-df-section--"


def disk_checks(runner: Runner, config: HealthSettings) -> list[Check]:
    """One check per path, from a single round trip running `df -P -k` once per path."""
    paths = config.disk_paths
    script = "; ".join(f"df -P -k -- {shlex.quote(path)} 2>&1; echo {_SECTION}" for path in paths)
    sections = runner.run(script).stdout.split(_SECTION + "\n")
    return [
        _disk_check(path, section, config) for path, section in zip(paths, sections, strict=False)
    ]


def _disk_check(path: str, df_output: str, config: HealthSettings) -> Check:
    lines = df_output.strip().splitlines()
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 6 or not (fields[2].isdigit() and fields[3].isdigit()):
        return Check(f"disk {path}", State.UNKNOWN, f"cannot read free space: {df_output.strip()}")
    used, available = int(fields[2]), int(fields[3])
    free_pct = 100.0 * available / max(1, used + available)
    message = f"{free_pct:.1f}% free ({available // 1024} MiB) on {fields[5]}"
    return Check(
        f"disk {path}",
        grade_low(free_pct, config.disk_warn_free_pct, config.disk_crit_free_pct),
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


def postgres_checks(context: ProbeContext, config: HealthSettings) -> tuple[list[Check], list[str]]:
    """Connections vs max_connections, long queries, idle-in-transaction sessions, version;
    and the databases that must have backups (`postgres.databases`, else the server's, listed
    as backup.db lists them, so a database nobody ever backed up is missed, not invisible).

    One connection serves both, through the host's one tunnel (postgres.ssh_tunnel), which
    CONTEXT shares with the sql probes. When the server cannot be reached its check is
    CRITICAL and the list is empty: freshness then falls back to what the store holds.
    """
    import psycopg  # here, not at the top: hosts without a DSN never need it

    try:
        server = context.postgres()
        with server.connect() as connection:
            row = connection.execute(
                _ACTIVITY_SQL,
                {
                    "long_s": config.long_query_seconds.total_seconds(),
                    "idle_s": config.idle_in_transaction_seconds.total_seconds(),
                },
            ).fetchone()
            databases = server.databases(connection)
    except (MaintError, psycopg.Error) as exc:
        return [Check("postgres", State.CRITICAL, str(exc))], []
    assert row is not None
    used, maximum, long_running, idle_in_tx, version = row
    used_pct = 100.0 * used / max(1, maximum)
    return [
        Check(
            "postgres connections",
            grade_high(used_pct, config.connections_warn_pct, config.connections_crit_pct),
            f"{used}/{maximum} connections ({used_pct:.0f}%)",
            round(used_pct, 2),
        ),
        Check(
            "postgres long queries",
            grade_high(long_running, config.long_query_warn, config.long_query_crit),
            f"{long_running} running longer than {_seconds(config.long_query_seconds)}",
            long_running,
        ),
        Check(
            "postgres idle in transaction",
            grade_high(
                idle_in_tx, config.idle_in_transaction_warn, config.idle_in_transaction_crit
            ),
            f"{idle_in_tx} idle in transaction over {_seconds(config.idle_in_transaction_seconds)}",
            idle_in_tx,
        ),
        Check("postgres version", State.OK, f"PostgreSQL {version}", version),
    ], databases


def _seconds(length: timedelta) -> str:
    """'300s', as the check has always said it (and '0.5s' for a fraction)."""
    seconds = length.total_seconds()
    return f"{int(seconds) if seconds.is_integer() else seconds}s"


def freshness_checks(
    host: Host, databases: list[str], config: HealthSettings, sources: Sequence[str] = ()
) -> list[Check]:
    """Age of the newest complete backup and newest passing drill of each database and of
    each backup.sources unit (SOURCES), and a warning naming the backups dated in the future
    (set aside, never the newest)."""
    try:
        ages = backup_freshness(host, datetime.now(UTC), databases, sources)
    except MaintError as exc:
        return [Check("backups", State.UNKNOWN, f"cannot read the backup store: {exc}")]
    checks = []
    for age in ages:
        if age.future:
            checks.append(_future_check(age.database, age.future))
        if age.lagging:
            checks.append(_lag_check(age.database, age.lagging))
        checks.append(
            _age_check(
                f"backup {age.database}",
                "complete backup",
                age.backup_age,
                config.backup_warn_age,
                config.backup_crit_age,
            )
        )
        checks.append(
            _age_check(
                f"drill {age.database}",
                "passing restore drill",
                age.drill_age,
                config.drill_warn_age,
                config.drill_crit_age,
            )
        )
    return checks


def _future_check(database: str, keys: tuple[str, ...]) -> Check:
    """A warning: someone's clock ran ahead, or an object was copied in; people must look."""
    ahead = format_duration(CLOCK_SKEW.total_seconds())
    message = (
        f"{len(keys)} backup object{'s' if len(keys) != 1 else ''} dated more than {ahead} in "
        f"the future, not counted as the newest: {', '.join(keys)}"
    )
    return Check(f"future-dated {database}", State.WARNING, message, list(keys))


def _lag_check(database: str, lagging: tuple[Lag, ...]) -> Check:
    """A warning: a store (of several copies) missed backups the others have."""
    words = [
        f"{lag.store} has no complete backup while {lag.behind} has one"
        if lag.lag is None
        else f"{lag.store} newest backup is {format_duration(lag.lag.total_seconds())} older "
        f"than {lag.behind}'s"
        for lag in lagging
    ]
    return Check(
        f"copies {database}", State.WARNING, "; ".join(words), [lag.store for lag in lagging]
    )


def _age_check(
    name: str, what: str, age: timedelta | None, warn: timedelta, crit: timedelta
) -> Check:
    if age is None:
        return Check(name, State.CRITICAL, f"no {what} found")
    seconds = age.total_seconds()
    state = grade_high(seconds, warn.total_seconds(), crit.total_seconds())
    return Check(name, state, f"newest {what} is {format_duration(seconds)} old", round(seconds))


def check_host(host: Host, runner: Runner, options: HealthOptions | None) -> Result:
    """Run every health check on HOST; the Result's details carry each check and the worst state."""
    config = host_health(host, options)
    with ProbeContext(host, runner) as context:
        probes = start_probes(context, config.probes)  # they run while the checks below do
        checks = disk_checks(runner, config)
        databases = list(host.settings.postgres.databases or [])
        if host.settings.postgres.dsn:
            server_checks, databases = postgres_checks(context, config)
            checks += server_checks
        if "backup" in host.settings.model_fields_set:  # set in vars, not only defaulted
            checks += freshness_checks(host, databases, config, sorted(unit_kinds(host)))
        checks += probes.checks()
    state = worst(check.state for check in checks)
    problems = [f"{check.name}: {check.message}" for check in checks if check.state != State.OK]
    summary = f"{state.name}: " + (
        "; ".join(problems) if problems else f"{len(checks)} checks passed"
    )
    return host_result(host.name, state, summary, checks=[check.to_dict() for check in checks])
