"""Runner for `ansible_connection: local`: commands run in a subprocess on this machine."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from contextlib import AbstractContextManager

from ..errors import CommandError, CommandTimeout
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


class LocalRunner(Runner):
    """Runs each command through /bin/sh in its own process group, so a timeout kills it all."""

    def __init__(self, host: Host) -> None:
        super().__init__(host)
        # Commands running now, so that close() (a host_timeout) can stop them.
        self._running: set[subprocess.Popen] = set()

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
        process = subprocess.Popen(
            ["/bin/sh", "-c", text],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )
        self._running.add(process)
        _widen(process.stdout)
        deadline = Deadline(timeout or self.default_timeout, lambda: _kill_group(process))
        stderr = StderrTail()
        readers: list = [start_thread(_copy_stderr, process.stderr, stderr)]
        if stdin is not None:
            pipe = process.stdin
            assert pipe is not None  # stdin=PIPE was asked for just above
            readers.append(Feeder(stdin, pipe.write, pipe.close))
        try:
            _drain(process.stdout, stdout)
            exit_code = process.wait()
        except BaseException:
            _kill_group(process)
            process.wait()
            raise
        finally:
            deadline.cancel()
            self._running.discard(process)
            for thread in readers:
                thread.join(timeout=5)
        if deadline.expired:
            raise CommandTimeout(
                f"{self.host.name}: command timed out after {timeout or self.default_timeout}s"
            )
        for helper in readers[1:]:
            helper.raise_error()
        return CommandResult(text, exit_code, "", stderr.text(), deadline.elapsed())

    def tunnel(self, remote_host: str, remote_port: int) -> AbstractContextManager[tuple[str, int]]:
        """Already on the host: the address is reachable as it is."""
        return contextlib.nullcontext((remote_host, remote_port))

    def close(self) -> None:
        """Stop the commands still running: the executor closes a runner when its host's
        host_timeout passes, and over SSH that breaks the connection they run on."""
        for process in list(self._running):
            _kill_group(process)

    def put(self, local: str, remote: str, mode: int | None = None) -> None:
        _copy(local, remote, mode)

    def get(self, remote: str, local: str) -> None:
        _copy(remote, local, None)


def _copy(source: str, target: str, mode: int | None) -> None:
    try:
        shutil.copyfile(source, target)
        if mode is not None:
            os.chmod(target, mode)
    except OSError as exc:
        raise CommandError(f"copy {source} -> {target} failed: {exc.strerror}") from exc


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _widen(pipe) -> None:
    """Let the command run up to CHUNK ahead of the reader, not the 64 KiB a pipe holds by
    default: while one chunk is walked, compressed and hashed, pg_dump keeps writing instead
    of waiting. The system may refuse (a per-user limit on pipe memory): the default stays."""
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: not Linux
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)


def _drain(source, writer: Writer | None) -> None:
    """Hand WRITER whole CHUNKs, not the 64 KiB a pipe read gives: each write passes
    through a compressor, a digest and a store's queue, and 16 times fewer of them took
    an eighth off the CPU of backing up a `cat` source (bench/sources.py)."""
    while chunk := source.read(CHUNK):
        if writer is not None:
            writer.write(chunk)


def _copy_stderr(source, tail: StderrTail) -> None:
    while chunk := source.read1(CHUNK):
        tail.feed(chunk)
