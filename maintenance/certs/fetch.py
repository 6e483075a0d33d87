"""Fetch the certificate chain a TLS server presents, after a STARTTLS exchange if needed.

The handshake verifies nothing and accepts weak keys and algorithms: the point is to see
whatever the server sends, then judge it (verify.py). PostgreSQL is asked with an SSLRequest,
as psql does; SMTP with EHLO and STARTTLS.
"""

from __future__ import annotations

import socket
import ssl
import struct

from ..errors import MaintError
from .targets import Endpoint
from .verify import is_ip_address

_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_SMTP_REPLY_LIMIT = 64 * 1024


class FetchError(MaintError):
    """The endpoint could not be reached or did not complete the TLS handshake."""


def fetch_chain(
    endpoint: Endpoint, timeout: float, via: tuple[str, int] | None = None
) -> list[bytes] | None:
    """The DER certificates ENDPOINT presents, leaf first, connecting to VIA if given (a
    tunnel's end) and naming the endpoint's server all the same.

    Return None when a PostgreSQL server answers that it has TLS off. Raise FetchError when
    the server cannot be reached or the exchange fails.
    """
    try:
        with socket.create_connection(via or (endpoint.address, endpoint.port), timeout) as sock:
            if endpoint.starttls == "postgres" and not _postgres_starttls(sock):
                return None
            if endpoint.starttls == "smtp":
                _smtp_starttls(sock)
            name = endpoint.server_name
            with _inspecting_context().wrap_socket(
                sock, server_hostname=None if is_ip_address(name) else name
            ) as tls:
                return _peer_chain(tls)
    except (OSError, ssl.SSLError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
        raise FetchError(f"cannot fetch certificates: {reason}") from None


def _inspecting_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _peer_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The whole chain as sent. Python 3.13 has a public call; 3.10-3.12 the same one on
    the underlying _ssl object; without either, the leaf alone."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    chain = getter() if getter is not None else None
    if not chain:
        leaf = tls.getpeercert(binary_form=True)
        return [leaf] if leaf else []
    return [
        item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
        for item in chain
    ]


def _postgres_starttls(sock: socket.socket) -> bool:
    """Send PostgreSQL's SSLRequest; True when the server agrees to TLS ('S')."""
    sock.sendall(_SSL_REQUEST)
    answer = sock.recv(1)
    if answer == b"S":
        return True
    if answer == b"N":
        return False
    raise FetchError(f"not a PostgreSQL server (answered {answer!r} to SSLRequest)")


def _smtp_starttls(sock: socket.socket) -> None:
    """Greeting, EHLO, STARTTLS: afterwards the socket is ready for the TLS handshake."""
    _smtp_reply(sock, "220")
    sock.sendall(b"EHLO maint.invalid\r\n")
    capabilities = _smtp_reply(sock, "250")
    if not any(line[4:].strip().upper() == "STARTTLS" for line in capabilities):
        raise FetchError("SMTP server does not offer STARTTLS")
    sock.sendall(b"STARTTLS\r\n")
    _smtp_reply(sock, "220")


def _smtp_reply(sock: socket.socket, code: str) -> list[str]:
    """Read one (possibly multi-line) reply; raise FetchError unless it carries CODE.

    Reads only up to the reply's last line: the server sends nothing more before the
    client speaks, so no TLS bytes are swallowed.
    """
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk or len(data) > _SMTP_REPLY_LIMIT:
            raise FetchError("SMTP server closed the connection or sent garbage")
        data += chunk
        lines = data.decode("latin-1").split("\r\n")
        if len(lines) > 1 and len(lines[-2]) >= 4 and lines[-2][3] == " " and lines[-1] == "":
            break
    lines = lines[:-1]
    if not lines[-1].startswith(code):
        raise FetchError(f"SMTP server answered {lines[-1]!r}, expected {code}")
    return lines
