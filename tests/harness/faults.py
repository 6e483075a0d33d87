"""A fault-injecting HTTP proxy in front of a store emulator (moto, the GCS emulator).

Clients point their endpoint at `proxy.url`; every request is forwarded to the target
unchanged (Host header included, so signed requests and the emulators' self-links keep
working) unless a fault rule matches it:

    with FaultProxy(s3_server.url) as proxy:
        proxy.fail_next(2, status=500, match=s3_upload_part)   # two UploadParts get a 500
        proxy.fail_always(match=s3_upload_part)                # the store is down for good
        proxy.drop_next(1, match=is_get, after_bytes=65536)    # connection cut mid-response
        ...

`FaultProxy(url, rate=100e6)` also paces response bodies to 100 MB/s, as a link to a real
object store would (benchmarks of what overlaps a download).
        assert proxy.faults_served == 2

Rules are checked in the order they were added; the first that matches and still has
uses left applies. Bodies are streamed in both directions, so the proxy adds no memory of
its own proportional to object size.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

CHUNK = 64 * 1024
# Headers that describe one connection, not the message: never forwarded as they are.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
_ERROR_CODES = {500: "InternalError", 502: "BadGateway", 503: "SlowDown", 504: "GatewayTimeout"}


@dataclass(frozen=True)
class ProxyRequest:
    """What a fault rule sees of a request: method, path, parsed query and headers."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def has_query(self, *names: str) -> bool:
        return all(name in self.query for name in names)


@dataclass(frozen=True)
class SeenRequest:
    """A request that reached the proxy and what the client got: a status, or None if the
    connection was cut; `injected` tells a fault from a forwarded answer."""

    method: str
    path: str
    status: int | None
    injected: bool
    query: Mapping[str, list[str]] = field(default_factory=dict)


Match = Callable[[ProxyRequest], bool]


def s3_upload_part(request: ProxyRequest) -> bool:
    """S3 UploadPart: PUT ?partNumber=N&uploadId=..."""
    return request.method == "PUT" and request.has_query("partNumber", "uploadId")


def s3_complete_multipart(request: ProxyRequest) -> bool:
    """S3 CompleteMultipartUpload: POST ?uploadId=..."""
    return request.method == "POST" and request.has_query("uploadId")


def s3_put_object(request: ProxyRequest) -> bool:
    """S3 PutObject: a PUT of a whole object (not a part, not a bucket)."""
    return (
        request.method == "PUT"
        and not request.has_query("partNumber")
        and request.path.strip("/").count("/") >= 1
    )


def gcs_upload_chunk(request: ProxyRequest) -> bool:
    """A chunk of a GCS resumable upload: PUT ?upload_id=..."""
    return request.method == "PUT" and request.has_query("upload_id")


def is_get(request: ProxyRequest) -> bool:
    return request.method == "GET"


def any_request(request: ProxyRequest) -> bool:
    return True


@dataclass
class _Rule:
    match: Match
    remaining: int | None  # None: forever
    status: int | None  # None: cut the connection instead of answering
    after_bytes: int = 0


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 forwarding to TARGET_URL, with fault rules."""

    def __init__(self, target_url: str, *, rate: float | None = None) -> None:
        target = urlsplit(target_url)
        self.rate = rate  # response body bytes per second per request; None: as fast as it goes
        if target.scheme != "http" or not target.hostname:
            raise ValueError(f"FaultProxy forwards to http:// targets only, got {target_url!r}")
        self.target_host = target.hostname
        self.target_port = target.port or 80
        self.url = ""
        self._rules: list[_Rule] = []
        self._seen: list[SeenRequest] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FaultProxy:
        """Listen on a free loopback port; `url` is then what clients should use."""
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        # serve_forever checks for shutdown() every poll_interval: 0.5 s by default, paid by
        # every test that stops a proxy.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fail_next(self, count: int, *, status: int = 500, match: Match = any_request) -> None:
        """Answer the next COUNT requests matching MATCH with HTTP STATUS (not forwarded)."""
        self._add(_Rule(match, count, status))

    def fail_always(self, match: Match = any_request, *, status: int = 503) -> None:
        """Answer every request matching MATCH with HTTP STATUS: the store is down for good."""
        self._add(_Rule(match, None, status))

    def drop_next(self, count: int, *, match: Match = any_request, after_bytes: int = 0) -> None:
        """Forward the next COUNT matching requests, then cut the connection after sending
        AFTER_BYTES of the response body (0: before any response at all)."""
        self._add(_Rule(match, count, None, after_bytes))

    def clear(self) -> None:
        """Remove every fault rule; requests are forwarded untouched again."""
        with self._lock:
            self._rules.clear()

    @property
    def requests_seen(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    @property
    def faults_served(self) -> int:
        with self._lock:
            return sum(1 for seen in self._seen if seen.injected)

    def _add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, request: ProxyRequest) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.remaining != 0 and rule.match(request):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _record(self, request: ProxyRequest, status: int | None, injected: bool) -> None:
        with self._lock:
            seen = SeenRequest(request.method, request.path, status, injected, request.query)
            self._seen.append(seen)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy
    _upstream: http.client.HTTPConnection | None = None

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_request(self) -> None:
        parts = urlsplit(self.path)
        request = ProxyRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=dict(self.headers.items()),
        )
        rule = self.proxy._take_rule(request)
        if rule is not None and rule.status is not None:
            for _ in self._body():
                pass
            # Recorded before answering: a client retrying at once must not be seen first.
            self.proxy._record(request, rule.status, injected=True)
            self._send_fault(rule.status)
            return
        try:
            response = self._forward()
        except OSError as exc:
            self._close_upstream()
            self._send_fault(502, f"proxy could not reach the target: {exc}")
            self.proxy._record(request, 502, injected=True)
            return
        if rule is not None:
            self._cut(response, rule.after_bytes)
            self.proxy._record(request, None, injected=True)
            return
        self._relay(response)
        self.proxy._record(request, response.status, injected=False)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_request

    def _body(self) -> Iterator[bytes]:
        """The request body in chunks, whether sized by Content-Length or chunked."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while size := int(self.rfile.readline().split(b";")[0], 16):
                yield self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk

    def _forward(self) -> http.client.HTTPResponse:
        if self._upstream is None:
            self._upstream = http.client.HTTPConnection(
                self.proxy.target_host, self.proxy.target_port, timeout=60
            )
        upstream = self._upstream
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                upstream.putheader(name, value)
        if chunked:  # re-frame: the target gets a sized body
            body = b"".join(self._body())
            upstream.putheader("Content-Length", str(len(body)))
            upstream.endheaders(body)
        else:
            upstream.endheaders()
            for chunk in self._body():
                upstream.send(chunk)
        return upstream.getresponse()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304)
        sized = response.getheader("Content-Length") is not None
        if not no_body and not sized:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if no_body:
            response.read()
            return
        started, sent = time.monotonic(), 0
        while chunk := response.read(CHUNK):
            if sized:
                self.wfile.write(chunk)
            else:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            if self.proxy.rate:
                time.sleep(max(0.0, sent / self.proxy.rate - (time.monotonic() - started)))
        if not sized:
            self.wfile.write(b"0\r\n\r\n")
        if response.will_close:
            self._close_upstream()

    def _cut(self, response: http.client.HTTPResponse, after_bytes: int) -> None:
        """Send the head and AFTER_BYTES of the body (if any), then drop the connection."""
        if after_bytes:
            self.send_response_only(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.read(after_bytes))
            self.wfile.flush()
        self._close_upstream()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _send_fault(self, status: int, message: str = "injected fault") -> None:
        code = _ERROR_CODES.get(status, "InjectedFault")
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message></Error>"
        ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _close_upstream(self) -> None:
        if self._upstream is not None:
            self._upstream.close()
            self._upstream = None

    def finish(self) -> None:
        self._close_upstream()
        super().finish()
