"""The network half of the http and tcp probes: one request, one connection, timed.

Standard library only, self-contained and Python 3.8 compatible (Ubuntu 20.04's), because
with `via: host` this module's source is what runs on the host (`python3 -c`, the request on
stdin): the same code measures from the control machine and from the host. Each function
takes and returns plain JSON-able dicts; grading is the caller's.
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

# A health endpoint's answer is small; a body past this is cut (the text test and the JSON
# parse then see the start only).
MAX_BODY = 1 << 20


def _tls_context(request: dict[str, Any]) -> ssl.SSLContext:
    if not request.get("verify_tls", True):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=request.get("ca_file"))


def _reason(exc: BaseException, timeout: float) -> str:
    """What went wrong, in the words an operator searches for."""
    reason = getattr(exc, "reason", None)  # urllib's URLError wraps the socket's error
    if isinstance(reason, BaseException):
        exc = reason
    if isinstance(exc, (socket.timeout, TimeoutError)):  # a tuple: Python 3.8
        return f"timed out after {timeout:g}s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def http_fetch(request: dict[str, Any]) -> dict[str, Any]:
    """REQUEST (url, method, headers, timeout, verify_tls, ca_file) sent once: the status,
    reason, body as text and milliseconds to the end of the body, or an error."""
    import urllib.error  # here: a tcp probe on a host does without the HTTP stack
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        """A 3xx is the answer: following it would grade another URL than the configured one."""

        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    timeout = float(request["timeout"])
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.ProxyHandler({}),  # the service itself, never an environment proxy
        NoRedirect(),
    ]
    if request["url"].lower().startswith("https:"):  # loading the CAs costs, only for TLS
        handlers.append(urllib.request.HTTPSHandler(context=_tls_context(request)))
    opener = urllib.request.build_opener(*handlers)
    sent = urllib.request.Request(  # noqa: S310 - the settings allow http(s) URLs only
        request["url"], method=request["method"], headers=request.get("headers") or {}
    )
    started = time.monotonic()
    try:
        try:
            answer = opener.open(sent, timeout=timeout)
            status, reason = answer.status, answer.reason
        except urllib.error.HTTPError as exc:  # a 4xx, 5xx or 3xx is an answer too
            answer, status, reason = exc, exc.code, str(exc.reason)
        with answer:
            body = _body(answer, started + timeout)
    except (OSError, ValueError) as exc:  # urllib's URLError is an OSError
        return {"error": _reason(exc, timeout)}
    if body is None:
        return {"error": f"timed out after {timeout:g}s"}
    elapsed = (time.monotonic() - started) * 1000
    text = body.decode("utf-8", errors="replace")
    return {"status": status, "reason": reason, "body": text, "ms": elapsed}


def _body(answer: Any, deadline: float) -> bytes | None:
    """ANSWER's body, its first MAX_BODY bytes at most; None past DEADLINE (a body that
    trickles in never lets a single read time out)."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY:
        if time.monotonic() > deadline:
            return None
        chunk = answer.read1(MAX_BODY - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def tcp_connect(request: dict[str, Any]) -> dict[str, Any]:
    """A connection to REQUEST's address and port within its timeout: milliseconds or error."""
    timeout = float(request["timeout"])
    started = time.monotonic()
    try:
        with socket.create_connection((request["address"], request["port"]), timeout=timeout):
            pass
    except OSError as exc:
        return {"error": _reason(exc, timeout)}
    return {"ms": (time.monotonic() - started) * 1000}
