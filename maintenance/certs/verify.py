"""Chain and name verification with cryptography's X.509 path builder.

The chain is checked apart from the name and from the leaf's own dates, so a report can say
"expired" and "chain verified" at once: the path is built at a moment inside the leaf's
validity window (now, when it is valid). CA certificates without a keyUsage extension, as
`openssl req -x509` makes them, are accepted like OpenSSL accepts them.
"""

from __future__ import annotations

import ipaddress
import ssl
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from .inspect import load_certificates


@lru_cache(maxsize=1)
def system_store() -> verification.Store:
    """The control machine's trust store (OpenSSL's default CA file, else its CA directory).

    Raise CertificateError if neither holds a certificate.
    """
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return store_from_pem(Path(candidate).read_bytes(), candidate)
    directory = Path(paths.capath or paths.openssl_capath or "/etc/ssl/certs")
    pem = b"".join(p.read_bytes() for p in sorted(directory.glob("*.pem")) if p.is_file())
    return store_from_pem(pem, str(directory))


def store_from_pem(data: bytes, source: str) -> verification.Store:
    return verification.Store(load_certificates(data, source))


def verify_chain(
    leaf: x509.Certificate,
    intermediates: list[x509.Certificate],
    store: verification.Store,
    now: datetime,
) -> str | None:
    """None when LEAF chains to a root in STORE (through INTERMEDIATES), else the reason."""
    moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    verifier = (
        verification.PolicyBuilder()
        .store(store)
        .time(moment)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except verification.VerificationError as exc:
        return _reason(str(exc), leaf)
    return None


# Any end-entity extensions (names and key usage are judged separately); CA certificates as
# the Web PKI wants them, except that keyUsage may be missing.
_EE_POLICY = verification.ExtensionPolicy.permit_all()
_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.KeyUsage, verification.Criticality.AGNOSTIC, None
)


def _reason(message: str, leaf: x509.Certificate) -> str:
    message = message.removeprefix("validation failed: ").split(" (encountered processing")[0]
    if "candidates exhausted" in message and "no interior errors" in message:
        if leaf.issuer == leaf.subject:
            return "self-signed certificate not in the trust store"
        return "no path to a trusted root (unknown issuer or missing intermediate certificate)"
    return message


def name_matches(cert: x509.Certificate, name: str) -> bool:
    """Whether CERT is valid for NAME (a DNS name or an IP address), as OpenSSL decides.

    IP addresses match IP subject alternative names. DNS names match DNS subject alternative
    names, or the common name when there is none; a wildcard covers one left-most label.
    """
    if is_ip_address(name):
        wanted = ipaddress.ip_address(name)
        return wanted in _alt_names(cert, x509.IPAddress)
    patterns = [str(value) for value in _alt_names(cert, x509.DNSName)] or [
        str(attribute.value)
        for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]
    return any(_dns_match(pattern, name) for pattern in patterns)


def _alt_names(cert: x509.Certificate, kind: type) -> list:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return extension.value.get_values_for_type(kind)


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = name.partition(".")
        return bool(head) and rest == pattern[2:] and "." in rest
    return pattern == name


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
