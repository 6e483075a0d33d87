"""A throwaway Redis server on a free loopback port, password-protected, persisting nothing.

The redis probe's tests fill it past its memory limit and count its clients, so every test
session gets its own server rather than a shared system one.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .net import free_port, log_tail, wait_until
from .tls import Issued

REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class RedisServer:
    """A running redis-server reachable at 127.0.0.1:port with ``password``."""

    port: int
    password: str
    workdir: Path
    process: subprocess.Popen = field(repr=False)
    tls_port: int | None = None
    host: str = "127.0.0.1"

    def url(self, db: int = 0) -> str:
        """redis:// URL without the password, as an inventory writes it next to password_env."""
        return f"redis://{self.host}:{self.port}/{db}"

    def tls_url(self, db: int = 0) -> str:
        """rediss:// URL of the TLS port (only when started with a certificate)."""
        assert self.tls_port is not None, "started without tls"
        return f"rediss://{self.host}:{self.tls_port}/{db}"

    def url_with_password(self, db: int = 0) -> str:
        """redis:// URL carrying the password, for tests of passwords given in the URL."""
        return f"redis://:{quote(self.password, safe='')}@{self.host}:{self.port}/{db}"

    def client(self, db: int = 0) -> redis.Redis:
        """An authenticated client, for tests that fill or reconfigure the server."""
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=db,
            password=self.password,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),  # a refused connection is refused once, as counted
        )

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and delete its directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis(
    *, maxmemory: str = "0", tls: Issued | None = None, timeout: float = 15.0
) -> RedisServer:
    """Start redis-server with its own config file (the password stays out of argv).

    ``maxmemory`` "0" means no limit, as in Redis; eviction is off so a full server
    refuses writes instead of silently dropping keys. With TLS, the server also listens
    with that certificate on ``tls_port`` (clients need no certificate of their own).
    """
    workdir = Path(tempfile.mkdtemp(prefix="maint-redis-"))
    port = free_port()
    tls_port = free_port() if tls else None
    password = secrets.token_urlsafe(16)
    config = workdir / "redis.conf"
    config.write_text(
        "\n".join(
            [
                *(_tls_lines(tls, tls_port, workdir) if tls and tls_port else []),
                f"port {port}",
                "bind 127.0.0.1",
                f"dir {workdir}",
                "daemonize no",
                'save ""',
                "appendonly no",
                f"maxmemory {maxmemory}",
                "maxmemory-policy noeviction",
                f"requirepass {password}",
                f"logfile {workdir / 'redis.log'}",
                "",
            ]
        )
    )
    config.chmod(0o600)
    process = subprocess.Popen(
        [REDIS_SERVER, str(config)],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, password, workdir, process, tls_port)
    if not wait_until(
        lambda: _answers_ping(server), timeout=timeout, alive=lambda: process.poll() is None
    ):
        log = log_tail(workdir / "redis.log")
        server.stop()
        raise RuntimeError(f"redis-server on port {port} did not answer PING:\n{log}")
    return server


def _tls_lines(tls: Issued, tls_port: int, workdir: Path) -> list[str]:
    cert_path, key_path = tls.write(workdir, "server")
    return [
        f"tls-port {tls_port}",
        f"tls-cert-file {cert_path}",
        f"tls-key-file {key_path}",
        "tls-auth-clients no",
    ]


def _answers_ping(server: RedisServer) -> bool:
    try:
        with server.client() as client:
            return bool(client.ping())
    except redis.RedisError:
        return False
