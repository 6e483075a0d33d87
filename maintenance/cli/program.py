"""The `maint` console script: an invoke Program over the same tasks as tasks.py."""

from invoke import Program

from .. import __version__
from .collection import build_namespace


def make_program() -> Program:
    """Build the program; a function rather than a module global so tests can make their own."""
    return Program(name="maint", binary="maint", version=__version__, namespace=build_namespace())


def main() -> None:
    make_program().run()
