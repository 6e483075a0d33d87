"""The `maint` console script: an invoke Program over the same tasks as tasks.py."""

import os
import sys

from invoke import Program
from invoke.exceptions import Exit, ParseError

from .. import __version__
from ..reporting import EXIT_USAGE
from .collection import build_namespace


class MaintProgram(Program):
    """invoke's Program, except that a command-line mistake exits 2 as DESIGN's contract says."""

    def parse_core(self, argv: list[str] | None) -> None:
        try:
            super().parse_core(argv)
        except ParseError as exc:
            raise Exit(f"error: {exc}", code=EXIT_USAGE) from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as exc:
            raise Exit(f"error: {exc}", code=EXIT_USAGE) from None


def make_program() -> Program:
    """Build the program; a function rather than a module global so tests can make their own."""
    return MaintProgram(
        name="maint", binary="maint", version=__version__, namespace=build_namespace()
    )


def main() -> None:
    try:
        make_program().run()
    except BrokenPipeError:
        # The reader went away (`maint --list | head`): stop quietly, as Unix tools do, and keep
        # the interpreter's final flush from raising again on the closed stdout.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
