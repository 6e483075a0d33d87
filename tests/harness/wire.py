"""Bytes on the wire: the product's SSH runner, counting what each command sends back.

The backup tests and bench/backup_wire.py both ask how many bytes crossed the network for a
backup (compressed on the host, or not): counting them where the runner hands the channel's
stdout on is the product's own path, with nothing in between.
"""

from __future__ import annotations

from typing import Any

from maintenance.runners import SshRunner, shell_command


class WireCountingRunner(SshRunner):
    """The product's SSH runner, counting the stdout bytes each command sends back over the
    channel (one entry per command in `received`); with PATH, commands run with that PATH on
    the host."""

    def __init__(self, host: Any, path: str | None = None) -> None:
        super().__init__(host)
        self.path = path
        self.received: list[int] = []

    def stream(self, command: Any, *, stdout: Any = None, **kwargs: Any) -> Any:
        if self.path:
            command = f"PATH={self.path}; export PATH; {shell_command(command)}"
        self.received.append(0)
        counted = None if stdout is None else _Counting(stdout, self.received)
        return super().stream(command, stdout=counted, **kwargs)


class _Counting:
    def __init__(self, sink: Any, counts: list[int]) -> None:
        self._sink, self._counts = sink, counts

    def write(self, data: bytes) -> int:
        self._counts[-1] += len(data)
        return self._sink.write(data)
