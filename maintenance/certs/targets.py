"""What certs.check looks at on a host: endpoints, certificate files and its PostgreSQL server.

The `certs` settings (maintenance.settings.certs) say what the user wrote, already validated;
here they become targets with their thresholds resolved, plus one STARTTLS endpoint per TCP
server of the host's postgres.dsn, graded as its sslmode says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from pydantic import ValidationError

from ..errors import ConfigError
from ..inventory import Host
from ..settings.certs import CertsSettings, CertTarget
from ..settings.flags import flag_error


@dataclass(frozen=True)
class CertsOptions:
    """Command-line overrides as given (text or numbers); None leaves the vars in charge."""

    warn_days: str | float | None = None
    crit_days: str | float | None = None


@dataclass(frozen=True)
class Thresholds:
    warn_days: float
    crit_days: float


@dataclass(frozen=True)
class Endpoint:
    """A TLS server reached from the control machine, optionally after a STARTTLS exchange.

    VERIFY_CHAIN / VERIFY_NAME say whether an unverifiable chain or a name mismatch is
    critical; for the automatic PostgreSQL check they follow the DSN's sslmode.
    CA_FILE is a path on the control machine.
    """

    address: str
    port: int
    server_name: str
    thresholds: Thresholds
    starttls: str = "none"
    ca_file: str | None = None
    verify_chain: bool = True
    verify_name: bool = True
    automatic: bool = False
    # Reached through the host's SSH connection (postgres.ssh_tunnel): ADDRESS is as the
    # host sees it, so a direct connection would check some other server, or none.
    tunnel: bool = False

    @property
    def label(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{'postgres ' if self.automatic else ''}{address}:{self.port}"


@dataclass(frozen=True)
class CertFile:
    """A PEM file (one certificate, a chain or a bundle) on the host; CA_FILE is on the host too."""

    path: str
    thresholds: Thresholds
    ca_file: str | None = None

    @property
    def label(self) -> str:
        return self.path


Target = Endpoint | CertFile


@dataclass(frozen=True)
class HostCerts:
    targets: list[Target] = field(default_factory=list)
    timeout: float = CertsSettings().timeout


def host_certs(host: Host, options: CertsOptions | None = None) -> HostCerts:
    """The host's targets with thresholds resolved. Raise ConfigError for a flag that does
    not fit the host's settings or an endpoint's CA file missing on this machine (a bad var
    was refused when the inventory was loaded; whether a file exists here is not the
    inventory's fault, so `config.check` elsewhere does not judge it)."""
    options = options or CertsOptions()
    try:
        settings = (host.settings.certs or CertsSettings()).with_flags(
            options.warn_days, options.crit_days
        )
    except ValidationError as exc:
        raise flag_error(exc, CertsSettings, host=host.name, section="certs") from None
    missing = [
        f"host {host.name!r}: certs: ca_file {entry.ca_file} of endpoint {entry.endpoint} "
        "is not a file on this machine"
        for entry in settings.targets
        if entry.endpoint and entry.ca_file and not Path(entry.ca_file).is_file()
    ]
    if missing:
        raise ConfigError("\n  ".join(missing))
    targets = [_target(entry, settings) for entry in settings.targets]
    if settings.postgres:
        targets += _postgres_targets(host, settings, targets)
    return HostCerts(targets, settings.timeout)


def _target(entry: CertTarget, settings: CertsSettings) -> Target:
    thresholds = Thresholds(*settings.thresholds(entry))
    if entry.file is not None:
        return CertFile(entry.file, thresholds, entry.ca_file)
    return Endpoint(
        entry.address,
        entry.port,
        entry.server_name or entry.address,
        thresholds,
        starttls=entry.starttls or "none",
        ca_file=entry.ca_file,
    )


def _postgres_targets(host: Host, settings: CertsSettings, explicit: list[Target]) -> list[Target]:
    """The servers of the host's postgres.dsn reached over TCP, unless listed explicitly.

    sslmode decides what is enforced, as libpq would: verify-full checks chain and name,
    verify-ca the chain only, anything else reports both without grading them. sslrootcert
    (a file on the control machine) is the CA file.
    """
    dsn = host.settings.postgres.dsn
    if not dsn:
        return []
    params = psycopg.conninfo.conninfo_to_dict(dsn)  # valid: the inventory's load parsed it
    names = str(params.get("host") or "").split(",")
    addresses = str(params.get("hostaddr") or "").split(",")
    ports = str(params.get("port") or "5432").split(",")
    sslmode = str(params.get("sslmode") or "prefer")
    root = params.get("sslrootcert")
    taken = {(t.address, t.port) for t in explicit if isinstance(t, Endpoint)}
    thresholds = Thresholds(*settings.thresholds())
    targets: list[Target] = []
    for index, name in enumerate(names):
        address = addresses[index] if index < len(addresses) and addresses[index] else name
        port = ports[index] if index < len(ports) else ports[-1]
        if not address or address.startswith(("/", "@")) or not port.isdigit():
            continue  # a Unix socket: no TLS there
        if (address, int(port)) in taken:
            continue
        targets.append(
            Endpoint(
                address,
                int(port),
                name or address,
                thresholds,
                starttls="postgres",
                ca_file=str(root) if root and root != "system" else None,
                verify_chain=sslmode in ("verify-ca", "verify-full"),
                verify_name=sslmode == "verify-full",
                automatic=True,
                tunnel=host.settings.postgres.ssh_tunnel,
            )
        )
    return targets
