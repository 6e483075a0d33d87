"""The daemon's HTTP endpoint: Prometheus' /metrics and a few HTML pages (such as /report).

One threaded WSGI server on the `metrics.listen` address, as prometheus_client would start
for /metrics alone: a page that takes a second to render never holds up a scrape. A page that
fails answers 500 with a line saying so (the daemon and its jobs go on); the error is logged.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

from ..secrets import mask_text

log = structlog.get_logger()

Page = Callable[[], str]
_App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the daemon's log is structlog's."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(
    address: str, port: int, registry: CollectorRegistry, pages: Mapping[str, Page]
) -> WSGIServer:
    """Start serving in a daemon thread; return the server (shutdown() stops it).
    Raise OSError when the address cannot be bound."""
    server_class = _Server6 if ":" in address else _Server
    server = make_server(
        address, port, app(registry, pages), server_class, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, name="metrics http", daemon=True).start()
    return server


def app(registry: CollectorRegistry, pages: Mapping[str, Page]) -> _App:
    """The WSGI application: each of PAGES at its path as text/html, anything else /metrics."""
    metrics = make_wsgi_app(registry)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        page = pages.get(environ.get("PATH_INFO", ""))
        if page is None:
            return metrics(environ, start_response)
        try:
            body = page().encode()
        except Exception as exc:  # a page's failure must not reach the daemon
            log.exception("page failed", path=environ.get("PATH_INFO"))
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [f"the page could not be made: {mask_text(str(exc))}\n".encode()]
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    return application
