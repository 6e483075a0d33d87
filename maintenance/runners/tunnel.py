"""Local port forwarding over an SSH transport, like `ssh -L`, for clients that dial a port.

psycopg (libpq) can only connect to an address, so a server reachable only from the host is
offered on a loopback port here; each accepted connection becomes a direct-tcpip channel.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable, Iterator

import paramiko

from .base import CHUNK, start_thread

POLL_S = 0.5


@contextlib.contextmanager
def forward(
    transport: Callable[[], paramiko.Transport], remote: tuple[str, int]
) -> Iterator[tuple[str, int]]:
    """Listen on 127.0.0.1 and relay each connection to REMOTE through TRANSPORT.

    Yields the local (address, port); closing the context ends every relayed connection.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(POLL_S)
    stop = threading.Event()
    relays: list[threading.Thread] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                client, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                channel = transport().open_channel("direct-tcpip", remote, peer)
            except (paramiko.SSHException, OSError):
                client.close()
                continue
            relays.append(start_thread(_relay, client, channel, stop))

    acceptor = start_thread(accept)
    try:
        yield listener.getsockname()
    finally:
        stop.set()
        acceptor.join(timeout=2 * POLL_S)
        listener.close()
        for relay in relays:
            relay.join(timeout=2 * POLL_S)


def _relay(client: socket.socket, channel: paramiko.Channel, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes or the tunnel is shut."""
    try:
        while not stop.is_set():
            ends: list[socket.socket | paramiko.Channel] = [client, channel]
            readable, _, _ = select.select(ends, [], [], POLL_S)
            if client in readable:
                data = client.recv(CHUNK)
                if not data:
                    break
                channel.sendall(data)
            if channel in readable:
                data = channel.recv(CHUNK)
                if not data:
                    break
                client.sendall(data)
    except OSError:
        pass
    finally:
        channel.close()
        client.close()
