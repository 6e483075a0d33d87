"""Facts about one X.509 certificate, as certs.check reports them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID

from ..errors import MaintError


class CertificateError(MaintError):
    """Data that should hold certificates holds none (or only garbage)."""


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    common_name: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    sans: tuple[str, ...]
    self_signed: bool
    is_ca: bool
    key_type: str
    key_size: int | None
    signature_algorithm: str
    sha256: str

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "days_left": round(self.days_left(now), 2),
            "sans": list(self.sans),
            "self_signed": self.self_signed,
            "is_ca": self.is_ca,
            "key_type": self.key_type,
            "key_size": self.key_size,
            "signature_algorithm": self.signature_algorithm,
            "sha256": self.sha256,
        }


def load_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate in DATA (PEM blocks, other blocks such as keys ignored, or one DER).

    Raise CertificateError naming SOURCE when there is none.
    """
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise CertificateError(f"{source}: unreadable PEM certificate: {exc}") from None
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError(f"{source}: no PEM or DER certificate found") from None


def describe(cert: x509.Certificate) -> CertificateInfo:
    key_type, key_size = _key(cert)
    return CertificateInfo(
        subject=cert.subject.rfc4514_string(),
        common_name=_common_name(cert),
        issuer=cert.issuer.rfc4514_string(),
        serial=format(cert.serial_number, "X"),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        sans=tuple(subject_alt_names(cert)),
        self_signed=is_self_signed(cert),
        is_ca=is_ca(cert),
        key_type=key_type,
        key_size=key_size,
        signature_algorithm=getattr(
            cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string
        ),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def subject_alt_names(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses as they are; other kinds prefixed with theirs."""
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = []
    for name in extension.value:
        if isinstance(name, x509.DNSName | x509.IPAddress):
            names.append(str(name.value))
        elif isinstance(name, x509.RFC822Name):
            names.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            names.append(f"URI:{name.value}")
    return names


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by its own key (not merely issuer == subject)."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except ValueError:
        return "unsupported", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__, None
