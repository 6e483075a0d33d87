"""Tasks of the `certs` namespace: certs.check."""

from __future__ import annotations

from types import SimpleNamespace

from .spec import Flag, Plan, TaskSpec, collection

COLUMNS = ("days", "state", "target", "role", "subject", "not_after", "problems")


def _check(flags: SimpleNamespace) -> Plan:
    from ..certs import CertsOptions, check_host, host_certs
    from ..settings.certs import CertsSettings
    from ..settings.flags import checked_flags

    options = CertsOptions(warn_days=flags.warn_days, crit_days=flags.crit_days)
    checked_flags(CertsSettings, {"warn_days": flags.warn_days, "crit_days": flags.crit_days})
    return Plan(check_host, options, validate=host_certs, columns=COLUMNS)


SPECS = (
    TaskSpec(
        "certs.check",
        """Check expiry, chain and name of each host's certificates, sorted by days left.

        Targets are the host's `certs` var (endpoints, files on the host) and its PostgreSQL
        server (postgres.dsn) when that has TLS on.

        Exit codes follow monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
        """,
        flags=(
            Flag(
                "warn_days",
                "WARNING when a certificate has this many days left or fewer (default: "
                "vars, else 30); overrides every var",
            ),
            Flag(
                "crit_days",
                "CRITICAL when a certificate has this many days left or fewer (default: "
                "vars, else 7); overrides every var",
            ),
        ),
        plan=_check,
        monitoring=True,
    ),
)

namespace = collection("certs", SPECS)
