"""Small networking helpers shared by the service launchers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(addresses: tuple[str, ...] = ("127.0.0.1",), attempts: int = 50) -> int:
    """Return a TCP port currently free on every address in ``addresses``.

    The kernel picks a free port on the first address; we then check that the same
    port is bindable on the others because an sshd fleet shares one port across many
    loopback addresses.
    """
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((addresses[0], 0))
            port = probe.getsockname()[1]
        if all(_bindable(address, port) for address in addresses[1:]):
            return port
    raise RuntimeError(f"no port free on all of {addresses!r} after {attempts} attempts")


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def accepts_tcp(address: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts a TCP connection at address:port."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``check`` until it is true, the deadline passes, or ``alive`` turns false.

    Returns whether ``check`` succeeded, so callers can raise with their own context
    (a log tail, the process's output) instead of a bare timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        if alive is not None and not alive():
            return check()
        time.sleep(interval)
    return check()


def log_tail(path, lines: int = 30) -> str:
    """Last lines of a log file, for error messages; empty if it does not exist."""
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""
