"""The runner interface: what a procedure may do on a host, whatever the transport.

Text commands and binary streams share one code path (`stream`), so `run` is only a stream
into memory; a dump never passes through a text decoder.
"""

from __future__ import annotations

import contextlib
import io
import shlex
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ..errors import CommandError
from ..inventory import Host
from ..secrets import mask_text
from ..streams import Reader, Writer

CHUNK = 1024 * 1024
STDERR_LIMIT = 64 * 1024

Command = str | Sequence[str]


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command: exit code, text output (unless streamed) and duration."""

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def check(self) -> CommandResult:
        """Return self, or raise CommandError quoting the (masked) stderr if it failed."""
        if not self.ok:
            detail = mask_text(self.stderr.strip()) or "no output on stderr"
            raise CommandError(f"command exited {self.exit_code}: {detail}")
        return self


def shell_command(command: Command) -> str:
    """A shell string for COMMAND; argument lists are quoted so names with spaces survive."""
    return command if isinstance(command, str) else shlex.join(command)


class StderrTail:
    """Collects a command's stderr in a thread, keeping only the last STDERR_LIMIT bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > STDERR_LIMIT:
            del self._buffer[: len(self._buffer) - STDERR_LIMIT]

    def text(self) -> str:
        return self._buffer.decode("utf-8", errors="replace")


def start_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


class Runner(ABC):
    """Runs commands and moves files on one host. Subclasses own the transport."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.default_timeout: float | None = host.settings.command_timeout or None  # 0: none

    @abstractmethod
    def stream(
        self,
        command: Command,
        *,
        stdout: Writer | None = None,
        stdin: Reader | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run COMMAND, copying its stdout into STDOUT and feeding it STDIN, in bounded chunks.

        ENV reaches the command's environment, never its argv (it may hold passwords).
        Raise CommandTimeout past TIMEOUT seconds; the command is stopped first.
        The result's stdout is empty: the bytes went to the writer.
        """

    @abstractmethod
    def put(self, local: str, remote: str, mode: int | None = None) -> None:
        """Copy a local file to the host."""

    @abstractmethod
    def get(self, remote: str, local: str) -> None:
        """Copy a file from the host."""

    def run(
        self,
        command: Command,
        *,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stdin: Reader | None = None,
    ) -> CommandResult:
        """Run COMMAND and return its text output; a non-zero exit is returned, not raised."""
        buffer = io.BytesIO()
        result = self.stream(command, stdout=buffer, stdin=stdin, env=env, timeout=timeout)
        return CommandResult(
            command=result.command,
            exit_code=result.exit_code,
            stdout=buffer.getvalue().decode("utf-8", errors="replace"),
            stderr=result.stderr,
            duration_s=result.duration_s,
        )

    @abstractmethod
    def tunnel(self, remote_host: str, remote_port: int) -> AbstractContextManager[tuple[str, int]]:
        """Make REMOTE_HOST:REMOTE_PORT, as the host sees it, reachable from this machine.

        The context yields the (address, port) to connect to while it lasts.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the transport; the runner may reconnect on next use."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Feeder:
    """Copies a reader into a command's stdin from a thread, closing stdin however it ends.

    A failing reader (a store read, a decompressor) is remembered and re-raised in the caller
    by `raise_error()`; a command that stops reading just ends the copy, its exit status tells.
    """

    def __init__(
        self,
        reader: Reader | None,
        send: Callable[[bytes], object],
        close: Callable[[], object],
        prefix: bytes = b"",
    ) -> None:
        self.error: BaseException | None = None
        self._thread = start_thread(self._copy, reader, send, close, prefix)

    def _copy(self, reader, send, close, prefix: bytes) -> None:
        try:
            if prefix:
                send(prefix)
            while reader is not None:
                try:
                    chunk = reader.read(CHUNK)
                except BaseException as exc:  # handed to the caller's thread
                    self.error = exc
                    return
                if not chunk:
                    return
                send(chunk)
        except (OSError, ValueError):
            return
        finally:
            with contextlib.suppress(OSError, ValueError):
                close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class Deadline:
    """Calls ON_EXPIRE once TIMEOUT seconds have passed, unless cancelled first."""

    def __init__(self, timeout: float | None, on_expire) -> None:
        self.started = time.monotonic()
        self.expired = False
        self._timer: threading.Timer | None = None
        if timeout is not None:
            self._timer = threading.Timer(timeout, self._expire, args=(on_expire,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, on_expire) -> None:
        self.expired = True
        # The command may have ended and its connection closed meanwhile: closing it again
        # (paramiko raises EOFError on a gone transport) must not crash the timer's thread.
        with contextlib.suppress(OSError, EOFError):
            on_expire()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
