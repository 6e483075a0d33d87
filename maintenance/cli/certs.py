"""Tasks of the `certs` namespace: certs.check."""

from invoke import Collection

from ..executor import DEFAULT_FORKS
from .common import run_task, task, task_help

COLUMNS = ("days", "state", "target", "role", "subject", "not_after", "problems")


@task(
    name="check",
    help=task_help(
        warn_days="WARNING when a certificate has this many days left or fewer (default: "
        "vars, else 30); overrides every var",
        crit_days="CRITICAL when a certificate has this many days left or fewer (default: "
        "vars, else 7); overrides every var",
    ),
)
def check(
    c,
    inventory=None,
    limit=None,
    json=False,
    forks=DEFAULT_FORKS,
    warn_days=None,
    crit_days=None,
):
    """Check expiry, chain and name of each host's certificates, sorted by days left.

    Targets are the host's `certs` var (endpoints, files on the host) and its PostgreSQL
    server (postgres.dsn) when that has TLS on.

    Exit codes follow monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    """
    from ..certs import CertsOptions, check_host, host_certs
    from ..monitoring import exit_code

    options = CertsOptions(warn_days=warn_days, crit_days=crit_days)
    run_task(
        "certs.check",
        check_host,
        options,
        inventory=inventory,
        limit=limit,
        json=json,
        forks=forks,
        code_for=exit_code,
        usage_code=3,
        validate=host_certs,
        columns=COLUMNS,
    )


namespace = Collection("certs", check)
