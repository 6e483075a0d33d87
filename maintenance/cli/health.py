"""Tasks of the `health` namespace: health.check."""

from __future__ import annotations

from types import SimpleNamespace

from .spec import Flag, Plan, TaskSpec, collection


def _check(flags: SimpleNamespace) -> Plan:
    from ..health import HealthOptions, check_host, host_health
    from ..settings.flags import checked_flags
    from ..settings.health import HealthSettings

    options = HealthOptions(
        disk_paths=flags.disk_path or None, long_query_seconds=flags.long_query_seconds
    )
    checked_flags(HealthSettings, {"long_query_seconds": flags.long_query_seconds})
    return Plan(check_host, options, validate=host_health)


SPECS = (
    TaskSpec(
        "health.check",
        """Check disk space, PostgreSQL (connections, long queries, idle transactions) and the
        host's probes (health.probes: HTTP, TCP, RabbitMQ, Redis, SQL, commands) per host.

        Exit codes follow monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
        """,
        flags=(
            Flag(
                "disk_path",
                "filesystem to check (repeatable; default: the host's health.disk_paths, else /)",
                repeatable=True,
            ),
            Flag(
                "long_query_seconds",
                "a query running longer than this counts as long: seconds, or a "
                "duration like 10min (overrides health.long_query_seconds)",
            ),
        ),
        plan=_check,
        monitoring=True,
    ),
)

namespace = collection("health", SPECS)
