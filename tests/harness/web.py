"""A health-endpoint style HTTP(S) server on 127.0.0.1 for the http probe's tests and bench.

Every path answers JSON; the query says how:

    /any/path?code=503&status=unhealthy&sleep_ms=300

answers `503` with `{"status": "unhealthy", "checks": {"db": {"status": ...}}}` after 300 ms
(defaults: 200, healthy, no wait). `trickle_ms=N` sends the body one byte every N ms, and
with `trickle=all` the status line and headers too: a server that never stops answering, so
no single read times out. `/redirect` answers 302 to `/`. The headers of every request are
kept in `requests` (path, headers), so a test can tell what was sent.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .tls import Issued


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.server.requests.append((parts.path, dict(self.headers.items())))
        time.sleep(int(query.get("sleep_ms", 0)) / 1000)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = query.get("status", "healthy")
        body = json.dumps({"status": status, "checks": {"db": {"status": status}}}).encode()
        pause = int(query.get("trickle_ms", 0)) / 1000
        if pause and query.get("trickle") == "all":
            self.wfile = _Trickle(self.wfile, pause)
        self.send_response(int(query.get("code", 200)))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if pause:
            _Trickle(self.wfile, pause).write(body)
        else:
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass  # quiet: pytest shows stderr of failing tests


class _Trickle:
    """A writer sending one byte at a time, PAUSE seconds apart (until the client leaves)."""

    def __init__(self, writer: Any, pause: float) -> None:
        self._writer = writer
        self._pause = pause

    def write(self, data: bytes) -> int:
        for index in range(len(data)):
            self._writer.write(data[index : index + 1])
            self._writer.flush()
            time.sleep(self._pause)
        return len(data)

    def flush(self) -> None:
        self._writer.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when many probes arrive at once,
    # and each dropped SYN costs its client a second before it tries again
    request_queue_size = 128
    requests: list[tuple[str, dict[str, str]]]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (a probe's timeout) is expected, not a failure


class WebServer:
    """The server, plain HTTP or (given ISSUED, a certificate for 127.0.0.1) HTTPS."""

    def __init__(self, issued: Issued | None = None, workdir: Path | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.requests = []
        scheme = "http"
        if issued is not None:
            assert workdir is not None, "a TLS server writes its key to a directory"
            cert_path, key_path = issued.write(workdir, f"web-{id(self)}")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_path, key_path)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.port = self._server.server_address[1]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
