"""certs.check: expiry, chain and name of every certificate a host serves or keeps on disk.

Each certificate gets a monitoring state from its days left (warn_days / crit_days); an
expired or not yet valid certificate, a name mismatch and an unverifiable chain are
critical. A target that cannot be checked at all is UNKNOWN. The host's state is the worst.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from ..errors import CommandError, HostUnreachable, MaintError
from ..inventory import Host
from ..monitoring import State, grade_low, host_result, worst
from ..results import Result, Status
from ..runners import Runner
from .fetch import fetch_chain
from .inspect import CertificateInfo, describe, load_certificates
from .targets import CertFile, CertsOptions, Endpoint, Target, Thresholds, host_certs
from .verify import name_matches, store_from_pem, system_store, verify_chain

ROLES = ("leaf", "intermediate")


@dataclass
class CertificateReport:
    info: CertificateInfo
    role: str
    state: State = State.OK
    problems: list[str] = field(default_factory=list)

    def flag(self, state: State, problem: str) -> None:
        self.state = max(self.state, state)
        self.problems.append(problem)


@dataclass
class TargetReport:
    target: Target
    certificates: list[CertificateReport] = field(default_factory=list)
    chain_verified: bool | None = None
    chain_error: str | None = None
    name_matches: bool | None = None
    error: str | None = None

    @property
    def state(self) -> State:
        if self.error:
            return State.UNKNOWN
        return worst(c.state for c in self.certificates)

    def to_dict(self, now: datetime) -> dict[str, Any]:
        target = self.target
        return {
            "target": target.label,
            "kind": "endpoint" if isinstance(target, Endpoint) else "file",
            **(
                {"server_name": target.server_name, "starttls": target.starttls,
                 "via": "ssh tunnel" if target.tunnel else "direct"}
                if isinstance(target, Endpoint)
                else {}
            ),
            "warn_days": target.thresholds.warn_days,
            "crit_days": target.thresholds.crit_days,
            "state": self.state.name,
            "chain_verified": self.chain_verified,
            "chain_error": self.chain_error,
            "name_matches": self.name_matches,
            "error": self.error,
            "certificates": [
                {
                    "role": c.role,
                    "state": c.state.name,
                    "problems": c.problems,
                    **c.info.to_dict(now),
                }
                for c in self.certificates
            ],
        }


def check_host(host: Host, runner: Runner, options: CertsOptions | None) -> Result:
    """Check every certificate target of HOST; details carry each target and the worst state."""
    settings = host_certs(host, options)
    now = datetime.now(UTC)
    reports = []
    tls_off = []
    for target in settings.targets:
        report = check_target(target, runner, now, settings.timeout)
        if report is None:
            tls_off.append(target.label)
        else:
            reports.append(report)
    state = worst(report.state for report in reports)
    rows = sorted(
        (row for report in reports for row in _rows(report, now)), key=lambda row: row["_order"]
    )
    for row in rows:
        del row["_order"]
    details = {
        "targets": [report.to_dict(now) for report in reports],
        "tls_off": tls_off,
        "rows": rows,
    }
    if not reports:
        skipped = {"state": state.name, **details}
        return Result(host.name, Status.SKIPPED, details=skipped, summary="nothing to check")
    return host_result(host.name, state, _summary(state, reports, now), **details)


def check_target(
    target: Target, runner: Runner, now: datetime, timeout: float
) -> TargetReport | None:
    """Fetch or read TARGET's certificates and judge them; None when its PostgreSQL server
    has TLS off (nothing to check)."""
    report = TargetReport(target)
    try:
        if isinstance(target, Endpoint):
            chain = _fetch(target, runner, timeout)
            if chain is None:
                return None
            certificates = [x509.load_der_x509_certificate(der) for der in chain]
            ca_pem = Path(target.ca_file).read_bytes() if target.ca_file else None
        else:
            certificates = load_certificates(_read(runner, target.path), target.path)
            ca_pem = _read(runner, target.ca_file) if target.ca_file else None
        if not certificates:
            raise MaintError("no certificate presented")
        store = store_from_pem(ca_pem, target.ca_file or "") if ca_pem else system_store()
    except HostUnreachable:
        raise
    except (MaintError, OSError, ValueError) as exc:
        report.error = str(exc)
        return report
    _judge(report, certificates, store, now)
    return report


def _fetch(target: Endpoint, runner: Runner, timeout: float) -> list[bytes] | None:
    """TARGET's chain, through the host's SSH connection when the target asks for it."""
    if not target.tunnel:
        return fetch_chain(target, timeout)
    with runner.tunnel(target.address, target.port) as via:
        return fetch_chain(target, timeout, via)


def _judge(report: TargetReport, certificates: list[x509.Certificate], store, now) -> None:
    target = report.target
    bundle = isinstance(target, CertFile) and all(describe(c).is_ca for c in certificates)
    for index, cert in enumerate(certificates):
        info = describe(cert)
        role = "ca" if bundle else ("root" if info.self_signed and index else ROLES[min(index, 1)])
        entry = CertificateReport(info, role)
        _grade_dates(entry, info, target.thresholds, now)
        report.certificates.append(entry)
    if bundle:
        return  # a CA bundle: each certificate's dates only, no chain to build
    leaf = report.certificates[0]
    report.chain_error = verify_chain(certificates[0], certificates[1:], store, now)
    report.chain_verified = report.chain_error is None
    enforce_chain = not isinstance(target, Endpoint) or target.verify_chain
    if report.chain_error:
        message = f"chain not verified: {report.chain_error}"
        if enforce_chain:
            leaf.flag(State.CRITICAL, message)
        else:
            leaf.problems.append(f"{message} (not enforced by sslmode)")
    if isinstance(target, Endpoint):
        report.name_matches = name_matches(certificates[0], target.server_name)
        if not report.name_matches:
            message = f"name {target.server_name!r} not in the certificate"
            if target.verify_name:
                leaf.flag(State.CRITICAL, message)
            else:
                leaf.problems.append(f"{message} (not enforced by sslmode)")


def _grade_dates(
    entry: CertificateReport, info: CertificateInfo, thresholds: Thresholds, now: datetime
) -> None:
    days = info.days_left(now)
    if now < info.not_before:
        entry.flag(State.CRITICAL, f"not valid before {info.not_before:%Y-%m-%d %H:%M} UTC")
    elif days < 0:
        entry.flag(State.CRITICAL, f"expired {-days:.1f} days ago")
    else:
        state = grade_low(days, thresholds.warn_days, thresholds.crit_days)
        if state != State.OK:
            entry.flag(state, f"expires in {days:.1f} days")


def _read(runner: Runner, path: str) -> bytes:
    """A file's bytes from the host. Raise CommandError if it cannot be read."""
    buffer = io.BytesIO()
    result = runner.stream(["cat", "--", path], stdout=buffer)
    if not result.ok:
        raise CommandError(f"cannot read {path}: {result.stderr.strip() or 'cat failed'}")
    return buffer.getvalue()


def _rows(report: TargetReport, now: datetime) -> list[dict[str, Any]]:
    """Table rows: one per certificate, ordered by days left; targets in error first."""
    if report.error:
        return [
            {
                "_order": float("-inf"),
                "days": "-",
                "state": State.UNKNOWN.name,
                "target": report.target.label,
                "role": "",
                "subject": "",
                "not_after": "",
                "problems": report.error,
            }
        ]
    return [
        {
            "_order": c.info.days_left(now),
            "days": f"{c.info.days_left(now):.1f}",
            "state": c.state.name,
            "target": report.target.label,
            "role": c.role,
            "subject": c.info.common_name,
            "not_after": f"{c.info.not_after:%Y-%m-%d}",
            "problems": "; ".join(c.problems),
        }
        for c in report.certificates
    ]


def _summary(worst: State, reports: list[TargetReport], now: datetime) -> str:
    if worst == State.OK:
        count = sum(len(r.certificates) for r in reports)
        soonest = min(
            (c.info.days_left(now) for r in reports for c in r.certificates), default=None
        )
        tail = f", next expiry in {soonest:.0f} days" if soonest is not None else ""
        return f"OK: {count} certificate(s){tail}"
    problems = []
    for report in reports:
        if report.error:
            problems.append(f"{report.target.label}: {report.error}")
        for cert in report.certificates:
            if cert.state != State.OK:
                problems.append(f"{report.target.label} {cert.role}: {'; '.join(cert.problems)}")
    return f"{worst.name}: " + "; ".join(problems)
