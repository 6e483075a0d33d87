"""Certificates made with `cryptography` and real TLS servers on 127.0.0.1 that present them.

A Pki holds a root and an intermediate CA and issues leaf certificates with any dates and
names; TlsServer serves a chain on a loopback port, plainly or after an SMTP STARTTLS
exchange, completing a real handshake with every client until stopped.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    """A certificate with its key, and the chain a server would send (leaf first)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write NAME.pem (the chain) and NAME.key; return both paths."""
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(self.chain_pem())
        key_path.write_bytes(self.key_pem())
        return cert_path, key_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Pki:
    """A root CA and an intermediate CA under it, for issuing test certificates."""

    def __init__(self, label: str = "maint test") -> None:
        self.root = self._ca(f"{label} root", None)
        self.intermediate = self._ca(f"{label} intermediate", self.root)

    def root_pem(self) -> bytes:
        return self.root.cert.public_bytes(serialization.Encoding.PEM)

    def _ca(self, common_name: str, parent: Issued | None) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(parent.cert.subject if parent else _name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if parent:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
                critical=False,
            )
        cert = builder.sign(parent.key if parent else key, hashes.SHA256())
        return Issued(cert, key, [cert] + (parent.chain if parent else []))

    def leaf(
        self,
        *names: str,
        days_left: float = 90,
        valid_from_days: float = -1,
        self_signed: bool = False,
        with_intermediate: bool = True,
    ) -> Issued:
        """A server certificate for NAMES (DNS names or IP addresses), valid from
        VALID_FROM_DAYS (relative to now) until DAYS_LEFT from now, issued by the
        intermediate (sent with it unless told otherwise) or by itself."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        alt_names: list[x509.GeneralName] = []
        for name in names or ("localhost",):
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        subject = _name((names or ("localhost",))[0])
        issuer = None if self_signed else self.intermediate
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + timedelta(days=valid_from_days))
            .not_valid_after(now + timedelta(days=days_left))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .sign(issuer.key if issuer else key, hashes.SHA256())
        )
        chain = [cert] + ([self.intermediate.cert] if issuer and with_intermediate else [])
        return Issued(cert, key, chain)


class TlsServer:
    """Serves ISSUED's chain on 127.0.0.1:port until stopped; STARTTLS may be 'smtp'."""

    def __init__(self, issued: Issued, workdir: Path, starttls: str = "none") -> None:
        cert_path, key_path = issued.write(workdir, f"server-{id(self)}")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, key_path)
        self.starttls = starttls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # listener closed by stop()
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        connection.settimeout(10)
        try:
            if self.starttls == "smtp":
                connection.sendall(b"220 test.invalid ESMTP ready\r\n")
                _read_line(connection)  # EHLO
                connection.sendall(b"250-test.invalid\r\n250-SIZE 1000\r\n250 STARTTLS\r\n")
                _read_line(connection)  # STARTTLS
                connection.sendall(b"220 go ahead\r\n")
            with self.context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # wait for the client to close
        except (OSError, ssl.SSLError):
            pass
        finally:
            connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        self.listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TlsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _read_line(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = connection.recv(1)
        if not chunk:
            break
        data += chunk
    return data
