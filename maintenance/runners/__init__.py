"""Runners: run commands and move files on a host, locally or over SSH, with one interface.

The SSH runner (fabric and paramiko, about 40 ms of imports) loads only when a run reaches a
host over SSH, so a cron job working on its own host starts faster.
"""

from typing import TYPE_CHECKING

from ..inventory import Host
from .base import CommandResult, Runner, shell_command
from .local import LocalRunner

if TYPE_CHECKING:
    from .ssh import SshRunner

__all__ = ["CommandResult", "LocalRunner", "Runner", "SshRunner", "runner_for", "shell_command"]


def runner_for(host: Host) -> Runner:
    """The runner HOST's `ansible_connection` asks for."""
    if host.connection == "local":
        return LocalRunner(host)
    from .ssh import SshRunner

    return SshRunner(host)


def __getattr__(name: str) -> object:
    if name == "SshRunner":
        from .ssh import SshRunner

        return SshRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
