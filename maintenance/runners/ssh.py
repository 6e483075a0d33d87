"""Runner for SSH hosts: one fabric Connection per host, reused by every command.

Commands run on raw paramiko channels so bytes stay bytes; environment values (passwords)
travel as the first lines of stdin and are read by the remote shell, because sshd drops
env requests it was not configured to accept and argv is visible to every user of the host.
"""

from __future__ import annotations

import shlex
import socket
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

import paramiko
from fabric import Connection

from ..errors import CommandError, CommandTimeout, ConfigError, HostUnreachable
from ..inventory import Host
from ..streams import Reader, Writer
from .base import (
    CHUNK,
    Command,
    CommandResult,
    Deadline,
    Feeder,
    Runner,
    StderrTail,
    shell_command,
    start_thread,
)
from .hostkeys import changed_key_error, install_policy
from .tunnel import forward

# How much a command may send before we have read it: paramiko buffers up to this much per
# channel. 8 MiB allows 80 MiB/s at 100 ms round trips (OpenSSH's client uses 2 MiB); 16 MiB
# held 10 MB more in a backup over SSH into S3, which then went past its 150 MB budget.
WINDOW_SIZE = 8 * 1024 * 1024
# The largest packet we accept from the server (OpenSSH sends up to 256 KiB; the RFC's
# minimum is 32 KiB). Python's cost is per packet: 128 KiB packets take a fifth less CPU.
MAX_PACKET = 128 * 1024
# Ciphers tried first. paramiko prefers AES-CTR with a separate HMAC; AES-GCM authenticates
# as it decrypts, in one call into OpenSSL: a dump streams back at 2.5x the speed, for half
# the CPU. Servers without it get paramiko's own order.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class SshRunner(Runner):
    """Connects lazily on first use; one connection serves every thread working on the host."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    def _transport(self) -> paramiko.Transport:
        with self._lock:
            if self._connection is None or not self._connection.is_connected:
                self._connection = self._connect()
            transport = self._connection.client.get_transport()
            assert transport is not None
            return transport

    def _connect(self) -> Connection:
        host = self.host
        settings = host.settings
        timeout = settings.connect_timeout
        connect_kwargs: dict[str, Any] = {
            "banner_timeout": timeout,
            "auth_timeout": timeout,
            "transport_factory": _transport_preferring_gcm,
        }
        if host.key_file:
            connect_kwargs["key_filename"] = host.key_file
        connection = Connection(
            host.address,
            user=host.user,
            port=host.port,
            connect_timeout=int(max(1, timeout)),
            connect_kwargs=connect_kwargs,
        )
        install_policy(
            connection.client, settings.ssh_known_hosts, settings.ansible_host_key_checking
        )
        where = f"{host.user + '@' if host.user else ''}{host.address}:{host.port}"
        try:
            if not connection.gateway:  # a ProxyJump or ProxyCommand brings its own socket
                # connection.host: the inventory's address after ssh_config's HostName
                sock = _nodelay_socket(connection.host, connection.port, timeout)
                connection.connect_kwargs["sock"] = sock
            connection.open()
        except paramiko.BadHostKeyException as exc:
            raise changed_key_error(exc) from exc
        except paramiko.AuthenticationException as exc:
            raise HostUnreachable(f"{where}: authentication failed: {exc}") from exc
        except (OSError, paramiko.SSHException, EOFError) as exc:
            reason = (
                "timed out"
                if isinstance(exc, socket.timeout | TimeoutError)
                else str(exc) or type(exc).__name__
            )
            raise HostUnreachable(f"{where}: cannot connect: {reason}") from exc
        return connection

    def stream(
        self,
        command: Command,
        *,
        stdout: Writer | None = None,
        stdin: Reader | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        text = shell_command(command)
        remote = _with_env_from_stdin(text, env) if env else text
        try:
            channel = self._transport().open_session(
                window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET
            )
            channel.exec_command(remote)
        except paramiko.SSHException as exc:
            raise HostUnreachable(f"{self.host.name}: SSH session failed: {exc}") from exc
        limit = timeout or self.default_timeout
        deadline = Deadline(limit, channel.close)
        stderr = StderrTail()
        helpers: list = [start_thread(_copy_stderr, channel, stderr)]
        if env or stdin is not None:
            prefix = _env_lines(env) if env else b""
            helpers.append(Feeder(stdin, channel.sendall, channel.shutdown_write, prefix))
        else:
            channel.shutdown_write()
        try:
            while chunk := channel.recv(CHUNK):
                if stdout is not None:
                    stdout.write(chunk)
            if deadline.expired:
                raise CommandTimeout(f"{self.host.name}: command timed out after {limit}s")
            exit_code = channel.recv_exit_status()
        except BaseException:
            channel.close()
            raise
        finally:
            deadline.cancel()
            for thread in helpers:
                thread.join(timeout=5)
        if deadline.expired:
            raise CommandTimeout(f"{self.host.name}: command timed out after {limit}s")
        for helper in helpers[1:]:
            helper.raise_error()
        return CommandResult(text, exit_code, "", stderr.text(), deadline.elapsed())

    def _sftp_call(self, action: str, source: str, target: str) -> paramiko.SFTPClient:
        self._transport()
        assert self._connection is not None
        try:
            getattr(self._connection, action)(source, target)
        except (OSError, paramiko.SSHException) as exc:
            raise CommandError(
                f"{self.host.name}: {action} {source} -> {target} failed: {exc}"
            ) from exc
        return self._connection.sftp()

    def put(self, local: str, remote: str, mode: int | None = None) -> None:
        sftp = self._sftp_call("put", local, remote)
        if mode is not None:
            sftp.chmod(remote, mode)

    def get(self, remote: str, local: str) -> None:
        self._sftp_call("get", remote, local)

    def tunnel(self, remote_host: str, remote_port: int) -> AbstractContextManager[tuple[str, int]]:
        """Forward a loopback port through this host's SSH connection, like `ssh -L`."""
        return forward(self._transport, (remote_host, remote_port))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def _nodelay_socket(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection with Nagle's algorithm off, as OpenSSH's own client sets it.

    paramiko leaves it on: each command's small request then waits for the peer's delayed
    ACK, about 40 ms per round trip, which made a one-line command take 44 ms instead of 3.
    """
    sock = socket.create_connection((address, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _transport_preferring_gcm(*args: Any, **kwargs: Any) -> paramiko.Transport:
    transport = paramiko.Transport(*args, **kwargs)
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    options.ciphers = tuple(c for c in PREFERRED_CIPHERS if c in offered) + tuple(
        c for c in offered if c not in PREFERRED_CIPHERS
    )
    return transport


def _with_env_from_stdin(command: str, env: Mapping[str, str]) -> str:
    """Wrap COMMAND so the remote shell reads ENV's values from stdin before running it."""
    reads = []
    for name, value in env.items():
        if not name.isidentifier():
            raise ConfigError(f"environment variable name {name!r} is not valid")
        if "\n" in value:
            raise ConfigError(f"environment variable {name} must not contain a newline")
        reads.append(f"IFS= read -r {name} && export {name}")
    return " && ".join([*reads, f"exec /bin/sh -c {shlex.quote(command)}"])


def _env_lines(env: Mapping[str, str]) -> bytes:
    return "".join(f"{value}\n" for value in env.values()).encode()


def _copy_stderr(channel: paramiko.Channel, tail: StderrTail) -> None:
    try:
        while chunk := channel.recv_stderr(CHUNK):
            tail.feed(chunk)
    except OSError:
        pass
