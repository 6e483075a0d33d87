"""Runners: run commands and move files on a host, locally or over SSH, with one interface."""

from ..inventory import Host
from .base import CommandResult, Runner, shell_command
from .local import LocalRunner
from .ssh import SshRunner

__all__ = ["CommandResult", "LocalRunner", "Runner", "SshRunner", "runner_for", "shell_command"]


def runner_for(host: Host) -> Runner:
    """The runner HOST's `ansible_connection` asks for."""
    return LocalRunner(host) if host.connection == "local" else SshRunner(host)
