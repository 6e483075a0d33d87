"""What certs.check looks at on a host: endpoints, certificate files and its PostgreSQL server.

The `certs` var is either a list of entries or a mapping with host-wide settings and a
`targets` list:

    certs:
      warn_days: 30          # host-wide thresholds (defaults 30 and 7)
      crit_days: 7
      postgres: true         # check postgres.dsn's server automatically (default true)
      targets:
        - {endpoint: "db1.example.com:5432", starttls: postgres, ca_file: /etc/ssl/our-ca.pem}
        - {file: /etc/ssl/certs/app.pem, warn_days: 45}

Thresholds: built-in defaults < the host's `certs` mapping < the entry < command-line flags
(an operator's flag is a request for this run, so it wins everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from ..errors import ConfigError
from ..inventory import Host

DEFAULT_WARN_DAYS = 30.0
DEFAULT_CRIT_DAYS = 7.0
DEFAULT_TIMEOUT = 10.0
STARTTLS = ("none", "postgres", "smtp")
_HOST_KEYS = {"warn_days", "crit_days", "postgres", "timeout", "targets"}
_ENDPOINT_KEYS = {"endpoint", "server_name", "starttls", "ca_file", "warn_days", "crit_days"}
_FILE_KEYS = {"file", "ca_file", "warn_days", "crit_days"}


@dataclass(frozen=True)
class CertsOptions:
    """Command-line overrides; None leaves the vars (or defaults) in charge."""

    warn_days: float | None = None
    crit_days: float | None = None


@dataclass(frozen=True)
class Thresholds:
    warn_days: float = DEFAULT_WARN_DAYS
    crit_days: float = DEFAULT_CRIT_DAYS


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
    timeout: float = DEFAULT_TIMEOUT


def host_certs(host: Host, options: CertsOptions | None = None) -> HostCerts:
    """The host's targets with thresholds resolved. Raise ConfigError listing every problem."""
    options = options or CertsOptions()
    where = f"host {host.name!r}: key 'certs'"
    raw = host.var("certs")
    settings: Mapping[str, Any] = {}
    entries: Any = raw or []
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - _HOST_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                f"(expected {', '.join(sorted(_HOST_KEYS))})"
            )
        settings, entries = raw, raw.get("targets") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a list of targets, got {type(entries).__name__}")
    problems: list[str] = []
    targets: list[Target] = []
    for index, entry in enumerate(entries):
        try:
            targets.append(_parse_entry(entry, f"{where}[{index}]", settings, options))
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        if settings.get("postgres", True) not in (False, "false", "no", "off"):
            targets += _postgres_targets(host, settings, options, targets)
        timeout = _number(settings.get("timeout", DEFAULT_TIMEOUT), f"{where}.timeout")
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return HostCerts(targets, timeout)


def _parse_entry(
    entry: Any, where: str, settings: Mapping[str, Any], options: CertsOptions
) -> Target:
    if not isinstance(entry, Mapping) or ("endpoint" in entry) == ("file" in entry):
        raise ConfigError(f"{where}: expected a mapping with either 'endpoint' or 'file'")
    allowed = _ENDPOINT_KEYS if "endpoint" in entry else _FILE_KEYS
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(expected {', '.join(sorted(allowed))})"
        )
    thresholds = _thresholds(where, settings, entry, options)
    ca_file = str(entry["ca_file"]) if entry.get("ca_file") else None
    if "file" in entry:
        if not str(entry["file"]).startswith("/"):
            raise ConfigError(f"{where}.file: expected an absolute path, got {entry['file']!r}")
        return CertFile(str(entry["file"]), thresholds, ca_file)
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"{where}.ca_file: {ca_file} is not a file on this machine")
    address, port = _split_endpoint(str(entry["endpoint"]), f"{where}.endpoint")
    starttls = str(entry.get("starttls", "none"))
    if starttls not in STARTTLS:
        raise ConfigError(
            f"{where}.starttls: expected one of {', '.join(STARTTLS)}, got {starttls!r}"
        )
    return Endpoint(
        address,
        port,
        str(entry.get("server_name") or address),
        thresholds,
        starttls=starttls,
        ca_file=ca_file,
    )


def _split_endpoint(text: str, where: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' into its parts."""
    address, _, port = text.rpartition(":")
    address = address.strip("[]")
    if not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{where}: expected host:port, got {text!r}")
    return address, int(port)


def _thresholds(
    where: str, settings: Mapping[str, Any], entry: Mapping[str, Any], options: CertsOptions
) -> Thresholds:
    resolved = {}
    for key in ("warn_days", "crit_days"):
        value = getattr(options, key)
        if value is None:
            value = entry.get(key, settings.get(key, getattr(Thresholds, key)))
        resolved[key] = _number(value, f"{where}.{key}")
    if resolved["crit_days"] > resolved["warn_days"]:
        raise ConfigError(
            f"{where}: crit_days ({resolved['crit_days']:g}) is above warn_days "
            f"({resolved['warn_days']:g})"
        )
    return Thresholds(**resolved)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return number


def _postgres_targets(
    host: Host, settings: Mapping[str, Any], options: CertsOptions, explicit: list[Target]
) -> list[Target]:
    """The servers of the host's postgres.dsn reached over TCP, unless listed explicitly.

    sslmode decides what is enforced, as libpq would: verify-full checks chain and name,
    verify-ca the chain only, anything else reports both without grading them. sslrootcert
    (a file on the control machine) is the CA file.
    """
    dsn = host.var("postgres.dsn")
    if not dsn:
        return []
    try:
        params = psycopg.conninfo.conninfo_to_dict(str(dsn))
    except psycopg.ProgrammingError:
        raise ConfigError(f"host {host.name!r}: key 'postgres.dsn' is not a valid DSN") from None
    names = str(params.get("host") or "").split(",")
    addresses = str(params.get("hostaddr") or "").split(",")
    ports = str(params.get("port") or "5432").split(",")
    sslmode = str(params.get("sslmode") or "prefer")
    root = params.get("sslrootcert")
    taken = {(t.address, t.port) for t in explicit if isinstance(t, Endpoint)}
    thresholds = _thresholds(f"host {host.name!r}: key 'certs'", settings, {}, options)
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
            )
        )
    return targets
