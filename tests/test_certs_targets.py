"""certs targets and name matching without a network: vars, DSNs, thresholds, wildcards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from maintenance.certs import CertsOptions, host_certs
from maintenance.certs.targets import Endpoint
from maintenance.certs.verify import name_matches
from maintenance.errors import ConfigError
from maintenance.inventory import Host
from tests.harness.tls import Pki


def host(**host_vars) -> Host:
    return Host("db1", (), host_vars)


def test_postgres_dsn_gives_one_starttls_target_per_tcp_host() -> None:
    """Unix sockets are skipped; sslmode decides what is enforced; sslrootcert is the CA."""
    dsn = "host=/run/postgresql,db-a,db-b port=5432,5433,5434 sslmode=verify-ca sslrootcert=/ca.pem"
    targets = host_certs(host(postgres={"dsn": dsn})).targets
    assert [(t.address, t.port) for t in targets] == [("db-a", 5433), ("db-b", 5434)]
    assert all(isinstance(t, Endpoint) and t.starttls == "postgres" for t in targets)
    assert all(t.verify_chain and not t.verify_name and t.ca_file == "/ca.pem" for t in targets)


def test_postgres_check_can_be_turned_off() -> None:
    settings = {"postgres": False, "targets": []}
    dsn = "postgresql://u:secret@db-a/app"
    assert host_certs(host(postgres={"dsn": dsn}, certs=settings)).targets == []


def test_threshold_precedence_defaults_host_entry_flags() -> None:
    certs = {"warn_days": 20, "targets": [{"file": "/a.pem"}, {"file": "/b.pem", "warn_days": 9}]}
    a, b = host_certs(host(certs=certs)).targets
    assert (a.thresholds.warn_days, a.thresholds.crit_days) == (20, 7)
    assert b.thresholds.warn_days == 9
    a, b = host_certs(host(certs=certs), CertsOptions(warn_days=60)).targets
    assert a.thresholds.warn_days == b.thresholds.warn_days == 60


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"crit_days": "25"}, "host 'db1': certs.targets[1] (with the command-line values): "
         "crit_days (25) is above warn_days (9)"),
        ({"warn_days": "soon"}, "certs.warn_days (with the command-line values): expected a "
         "number"),
        ({"crit_days": -1}, "certs.crit_days (with the command-line values): expected at least 0"),
    ],
)  # fmt: skip
def test_flags_are_validated_like_the_vars(flags: dict, message: str) -> None:
    """A flag is checked against the host's settings it overrides; exit 3 comes from this."""
    certs = {"warn_days": 30, "targets": [{"file": "/a.pem"}, {"file": "/b.pem", "warn_days": 9}]}
    with pytest.raises(ConfigError) as raised:
        host_certs(host(certs=certs), CertsOptions(**flags))
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("names", "asked", "expected"),
    [
        (("*.example.com",), "a.example.com", True),
        (("*.example.com",), "A.Example.COM.", True),
        (("*.example.com",), "example.com", False),
        (("*.example.com",), "a.b.example.com", False),
        (("db.example.com", "127.0.0.1"), "127.0.0.1", True),
        (("db.example.com",), "127.0.0.1", False),
        (("::1",), "::1", True),
    ],
)
def test_names_match_as_openssl_decides(names: tuple, asked: str, expected: bool) -> None:
    assert name_matches(Pki("names").leaf(*names).cert, asked) is expected


def test_common_name_counts_only_without_dns_alt_names() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    assert name_matches(cert, "legacy.example.com")
    assert not name_matches(cert, "other.example.com")
