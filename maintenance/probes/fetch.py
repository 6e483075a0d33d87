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
        with opener.open(sent, timeout=timeout) as answer:
            status, reason, body = answer.status, answer.reason, answer.read(MAX_BODY)
    except urllib.error.HTTPError as exc:  # a 4xx, 5xx or 3xx is an answer too
        status, reason, body = exc.code, str(exc.reason), exc.read(MAX_BODY)
    except (OSError, ValueError, urllib.error.URLError) as exc:
        return {"error": _reason(exc, timeout)}
    elapsed = (time.monotonic() - started) * 1000
    text = body.decode("utf-8", errors="replace")
    return {"status": status, "reason": reason, "body": text, "ms": elapsed}


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
