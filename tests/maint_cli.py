"""`maint` run inside the test process, through the console script's own entry point.

A new interpreter costs 0.3-0.5 s of start-up and imports per run; a settings table runs the
command hundreds of times. In this process the same `main()` parses the same argv, and the
run ends the way the interpreter would end it: the exit code of SystemExit (a message given as
the code goes to stderr with code 1), an uncaught exception's traceback on stderr with code 1.
Tests of start-up itself (the installed script, `--help`, lazy imports, bytecode caching)
keep starting a real process.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from maintenance.cli.program import main


@dataclass(frozen=True)
class Run:
    """Exit code and output of one `maint` run."""

    returncode: int
    stdout: str
    stderr: str


def run_maint_cli(
    argv: list[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None
) -> Run:
    """`maint ARGV` with stdin at end of file, as `subprocess.run(..., stdin=DEVNULL)` would.

    CWD and ENV (the whole environment, as subprocess takes it) hold for this run only.
    """
    out, err = io.StringIO(), io.StringIO()
    with _process_state(["maint", *argv], cwd, env), contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        code = _exit_code(err)
    return Run(code, out.getvalue(), err.getvalue())


def _exit_code(err: io.StringIO) -> int:
    """Run main() and say what the interpreter would exit with."""
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        err.write(f"{exc.code}\n")
        return 1
    except Exception:
        err.write(traceback.format_exc())
        return 1
    return 0


@contextlib.contextmanager
def _process_state(
    argv: list[str], cwd: Path | str | None, env: Mapping[str, str] | None
) -> Iterator[None]:
    """What a new process would have fresh: argv, stdin, working directory, environment, and
    the logging set-up the run configures (pointing at its captured stderr)."""
    saved_argv, saved_stdin, saved_cwd = sys.argv, sys.stdin, os.getcwd()
    saved_env = dict(os.environ)
    saved_logging = structlog.get_config()
    sys.argv, sys.stdin = argv, io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        yield
    finally:
        sys.argv, sys.stdin = saved_argv, saved_stdin
        os.chdir(saved_cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(saved_env)
        structlog.configure(**saved_logging)
