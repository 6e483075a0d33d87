"""The `maint` console script: an invoke Program over the same tasks as tasks.py."""

import os
import select
import sys

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..reporting import EXIT_USAGE
from .collection import build_namespace


class MaintProgram(Program):
    """invoke's Program, except that a command-line mistake exits 2 as DESIGN's contract says,
    and bytecode caching stays as the interpreter has it."""

    def parse_core(self, argv: list[str] | None) -> None:
        # invoke turns bytecode writing off (unless --write-pyc) so that running a tasks.py
        # leaves no __pycache__ beside it. maint loads no tasks.py, and its procedures import
        # their modules lazily, after this point: without a cache (a source checkout, or
        # PYTHONPYCACHEPREFIX) every run would compile fabric and paramiko again, 0.1 s each time.
        dont_write_bytecode = sys.dont_write_bytecode
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
        finally:
            sys.dont_write_bytecode = dont_write_bytecode

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(f"error: {exc}", code=EXIT_USAGE) from None
        except ValueError as exc:  # invoke casts number flags with int(): `--forks x`
            raise Exit(
                f"error: expected a whole number, got {_bad_value(exc)}", code=EXIT_USAGE
            ) from None


def _bad_value(exc: ValueError) -> str:
    """The offending text of int()'s message, e.g. "'x'"."""
    return str(exc).rpartition(": ")[2] or str(exc)


def make_program() -> Program:
    """Build the program; a function rather than a module global so tests can make their own."""
    return MaintProgram(
        name="maint", binary="maint", version=__version__, namespace=build_namespace()
    )


def main() -> None:
    try:
        make_program().run()
    except BrokenPipeError:
        if not _stdout_closed():
            raise
        # The reader went away (`maint --list | head`): stop quietly, as Unix tools do, and keep
        # the interpreter's final flush from raising again on the closed stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error on it)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False
