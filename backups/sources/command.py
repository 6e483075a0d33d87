"""`command` sources: any command whose stdout is the dump (mongodump --archive, a topic
export, tar), run by the host's shell through its runner.

A non-zero exit fails the backup and no complete backup is left (the upload is aborted); the
error carries the exit status and the command's stderr. Nothing is counted: the command's
output is opaque. A drill restores with `restore_command` (the dump on its stdin) into a
throwaway target named by `$MAINT_TARGET`, with a private directory in `$MAINT_TMP_DIR`, then
runs `check_command` and `cleanup_command`; each one's exit status and stderr's tail are
recorded. Secrets come from the host's environment; the inventory holds none.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from backups.archive.manifest import Manifest
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.settings.sources import CommandSource as CommandSettings

from .base import Drilled, DumpCommand, Source, private_dir, stderr_tail

NO_RESTORE = "no restore_command: a command source's drill needs one to prove the dump restores"


class CommandSource(Source):
    kind = "command"
    settings: CommandSettings

    def extension(self) -> str:
        return self.settings.suffix

    @contextmanager
    def dump(self, runner: Runner, unit: str) -> Iterator[DumpCommand]:
        yield DumpCommand(command=["sh", "-c", self.settings.command])

    def drill(self, runner: Runner, unit: str, path: str, manifest: Manifest) -> Drilled:
        scratch = scratch_name(unit, datetime.now(UTC))
        drilled = Drilled(scratch=scratch)
        if self.settings.restore_command is None:
            drilled.reasons.append(NO_RESTORE)
            return drilled
        with private_dir(runner, "maint-drill") as tmp_dir:
            env = {"MAINT_TARGET": scratch, "MAINT_TMP_DIR": tmp_dir}
            try:
                started = time.monotonic()
                restored = self._step(runner, "restore_command", self.settings.restore_command,
                                      env, stdin=path)  # fmt: skip
                drilled.restore_s = round(time.monotonic() - started, 3)
                if restored:
                    drilled.reasons.append(restored)
                elif self.settings.check_command:
                    checked = self._step(runner, "check_command", self.settings.check_command, env)
                    drilled.reasons += [checked] if checked else []
            finally:
                if self.settings.cleanup_command:
                    cleaned = self._step(
                        runner, "cleanup_command", self.settings.cleanup_command, env
                    )
                    drilled.reasons += [cleaned] if cleaned else []
        return drilled

    def occupied(self, runner: Runner, into: str) -> bool:
        """What restore_command overwrites is its own affair."""
        return False

    def restore(self, runner: Runner, unit: str, path: str, into: str) -> None:
        if self.settings.restore_command is None:
            raise MaintError(f"source {self.name!r} has no restore_command")
        failed = self._step(
            runner, "restore_command", self.settings.restore_command, {"MAINT_TARGET": into},
            stdin=path,
        )  # fmt: skip
        if failed:
            raise MaintError(failed)

    @staticmethod
    def _step(
        runner: Runner, what: str, command: str, env: dict[str, str], stdin: str | None = None
    ) -> str | None:
        """Run one of the source's commands; None when it passed, else why it failed."""
        line = f"sh -c {shlex.quote(command)}"
        if stdin is not None:
            line += f" < {shlex.quote(stdin)}"
        result = runner.run(line, env=env)
        if result.ok:
            return None
        return f"{what} exited with status {result.exit_code}: {stderr_tail(result.stderr)}"


def scratch_name(unit: str, started: datetime) -> str:
    """A throwaway target's name: a word any database accepts, dated, marked as maint's."""
    word = re.sub(r"[^A-Za-z0-9_]", "_", unit)[:40]
    return f"maint_drill_{word}_{started:%Y%m%d%H%M%S}"
