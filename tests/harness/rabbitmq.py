"""A throwaway RabbitMQ node with the management plugin, everything in a temporary directory.

The node runs as a plain process on free loopback ports (AMQP, management, distribution and
its own epmd), so it clashes with nothing and leaves nothing behind. Its statistics are
sampled every second instead of every five, so a test waits about a second for the
management API to show what it just published.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika

from .net import accepts_tcp, free_port, log_tail, wait_until

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
EPMD = "/usr/bin/epmd"

# Statistics emitted every 250 ms and kept in one-second samples: the management API otherwise
# moves in five-second steps, and each step of a test waits for it.
ADVANCED_CONFIG = """[
 {rabbit, [{collect_statistics_interval, 250}]},
 {rabbitmq_management_agent, [{sample_retention_policies,
   [{global, [{605, 1}]}, {basic, [{605, 1}]}, {detailed, [{10, 1}]}]}]}
].
"""


@dataclass
class RabbitMQ:
    """A running node: AMQP and management API on 127.0.0.1, one administrator user."""

    amqp_port: int
    management_port: int
    epmd_port: int
    user: str
    password: str
    workdir: Path
    process: subprocess.Popen = field(repr=False)
    epmd: subprocess.Popen = field(repr=False)
    vhost: str = "/"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """Call the management API as the administrator; the decoded JSON answer or None."""
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL built here
            self.management_url + "/api/" + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": _basic_auth(self.user, self.password)}
            | ({"Content-Type": "application/json"} if body is not None else {}),
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            payload = response.read()
        return json.loads(payload) if payload else None

    def declare_queue(self, name: str) -> None:
        """Create an empty durable queue (delete any leftover of the same name first)."""
        self.delete_queue(name)
        self.api("PUT", self._queue_path(name), {"durable": True})

    def delete_queue(self, name: str) -> None:
        with contextlib.suppress(urllib.error.HTTPError):
            self.api("DELETE", self._queue_path(name))

    def publish(self, queue: str, count: int) -> None:
        """Put COUNT small persistent messages into QUEUE over AMQP."""
        with contextlib.closing(self.connect()) as connection:
            channel = connection.channel()
            for number in range(count):
                channel.basic_publish("", queue, str(number).encode())

    def queue_figures(self, name: str) -> dict[str, int]:
        """messages_ready, messages_unacknowledged and consumers as the API shows them now."""
        queue = self.api("GET", self._queue_path(name))
        return {
            key: int(queue.get(key, -1))
            for key in ("messages_ready", "messages_unacknowledged", "consumers")
        }

    def wait_for(self, name: str, timeout: float = 15.0, **expected: int) -> None:
        """Wait until the API's figures for queue NAME match EXPECTED (its samples lag)."""
        if not wait_until(
            lambda: _matches(self.queue_figures(name), expected), timeout=timeout, interval=0.2
        ):
            raise AssertionError(
                f"queue {name}: wanted {expected}, API shows {self.queue_figures(name)}"
            )

    def connect(self) -> pika.BlockingConnection:
        """A fresh AMQP connection as the administrator."""
        return pika.BlockingConnection(
            pika.ConnectionParameters(
                host="127.0.0.1",
                port=self.amqp_port,
                credentials=pika.PlainCredentials(self.user, self.password),
            )
        )

    @contextlib.contextmanager
    def consumer(self, queue: str, prefetch: int) -> Iterator[None]:
        """A consumer that takes up to PREFETCH messages and never acknowledges them.

        The messages it holds count as unacknowledged; leaving the block closes its
        connection, which puts them back as ready and drops the queue's consumer count.
        """
        consumer = _Consumer(self, queue, prefetch)
        consumer.start()
        try:
            yield
        finally:
            consumer.stop()

    def stop(self) -> None:
        """Kill the node and its epmd, then delete the directory; test data needs no goodbye."""
        for process in (self.process, self.epmd):
            _kill_group(process)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _queue_path(self, name: str) -> str:
        return f"queues/{quote(self.vhost, safe='')}/{quote(name, safe='')}"


class _Consumer(threading.Thread):
    """A pika consumer in its own thread (pika connections are not thread-safe)."""

    def __init__(self, server: RabbitMQ, queue: str, prefetch: int) -> None:
        super().__init__(daemon=True)
        self.server, self.queue, self.prefetch = server, queue, prefetch
        self.ready = threading.Event()
        self.connection: pika.BlockingConnection | None = None
        self.channel: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.connection = self.server.connect()
            self.channel = self.connection.channel()
            self.channel.basic_qos(prefetch_count=self.prefetch)
            self.channel.basic_consume(self.queue, lambda *_: None, auto_ack=False)
            self.ready.set()
            self.channel.start_consuming()
            self.connection.close()
        except BaseException as exc:  # reported by stop() in the test's thread
            self.error = exc
            self.ready.set()

    def start(self) -> None:
        super().start()
        self.ready.wait(10)
        if self.error is not None:
            raise RuntimeError(f"consumer on {self.queue} failed: {self.error}")

    def stop(self) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.add_callback_threadsafe(self.channel.stop_consuming)
        self.join(10)


def start_rabbitmq(timeout: float = 60.0) -> RabbitMQ:
    """Start a node and wait until its management API answers the administrator."""
    workdir = Path(tempfile.mkdtemp(prefix="maint-rabbitmq-"))
    amqp_port, management_port, dist_port, epmd_port = (free_port() for _ in range(4))
    user, password = "maint", secrets.token_urlsafe(16)
    env = _environment(workdir, amqp_port, dist_port, epmd_port)
    (workdir / "home").mkdir()
    (workdir / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (workdir / "advanced.config").write_text(ADVANCED_CONFIG)
    config = workdir / "rabbitmq.conf"
    config.write_text(
        "\n".join(
            [
                f"listeners.tcp.default = 127.0.0.1:{amqp_port}",
                f"management.tcp.port = {management_port}",
                "management.tcp.ip = 127.0.0.1",
                f"default_user = {user}",
                f"default_pass = {password}",
                "default_user_tags.administrator = true",
                "loopback_users = none",
                "",
            ]
        )
    )
    config.chmod(0o600)
    epmd = _spawn([EPMD, "-port", str(epmd_port), "-address", "127.0.0.1"], workdir, env, "epmd")
    if not wait_until(lambda: accepts_tcp("127.0.0.1", epmd_port), timeout=10):
        _kill_group(epmd)
        raise RuntimeError(f"epmd did not listen on port {epmd_port}")
    process = _spawn([RABBITMQ_SERVER], workdir, env, "rabbitmq")
    server = RabbitMQ(amqp_port, management_port, epmd_port, user, password, workdir, process, epmd)
    if not wait_until(
        lambda: _api_answers(server),
        timeout=timeout,
        interval=0.2,
        alive=lambda: process.poll() is None,
    ):
        log = log_tail(workdir / "rabbitmq.out")
        server.stop()
        raise RuntimeError(f"rabbitmq management API on port {management_port} not ready:\n{log}")
    return server


def _environment(workdir: Path, amqp_port: int, dist_port: int, epmd_port: int) -> dict[str, str]:
    """rabbitmq-server's settings: own node name, ports, cookie home and directories."""
    return {
        **os.environ,
        "HOME": str(workdir / "home"),
        "RABBITMQ_NODENAME": f"rabbit-{workdir.name.rsplit('-', 1)[-1]}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbitmq.pid"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
    }


def _spawn(argv: list[str], workdir: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    """Start ARGV in its own process group, output to NAME.out in WORKDIR."""
    with open(workdir / f"{name}.out", "wb") as log:
        return subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _kill_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _api_answers(server: RabbitMQ) -> bool:
    try:
        return bool(server.api("GET", "overview"))
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _matches(figures: dict[str, int], expected: dict[str, int]) -> bool:
    return all(figures.get(key) == value for key, value in expected.items())


def _basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
