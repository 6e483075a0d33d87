"""Command jobs: one shell command on the host, through its runner (local or SSH)."""

from __future__ import annotations

from typing import Any

from ..errors import CommandTimeout
from ..inventory import Host
from ..results import Result, Status
from ..runners import Runner
from ..runners.base import StderrTail
from ..secrets import mask_text
from ..settings.jobs import Job

TAIL_CHARACTERS = 2000  # of stdout and stderr kept in the report


class _Tail(StderrTail):
    """The last bytes of a command's stdout: memory stays flat whatever it prints."""

    def write(self, data: bytes) -> int:
        self.feed(data)
        return len(data)


def run_command_job(host: Host, runner: Runner, job: Job, dry_run: bool) -> Result:
    """Run JOB's command on HOST; a non-zero exit fails the host. A dry run only shows it."""
    assert job.command is not None
    details: dict[str, Any] = {"job": job.name, "kind": "command", "command": job.command}
    if dry_run:
        details["dry_run"] = True
        return Result(host.name, Status.OK, details, summary=f"would run: {job.command}")
    stdout = _Tail()
    try:
        done = runner.stream(job.command, stdout=stdout, timeout=job.timeout or None)
    except CommandTimeout as exc:
        return Result(host.name, Status.FAILED, details, error=mask_text(str(exc)))
    details.update(
        exit_code=done.exit_code,
        stdout_tail=_tail(stdout.text()),
        stderr_tail=_tail(done.stderr),
        duration_s=round(done.duration_s, 3),
    )
    if done.exit_code != 0:
        last = _last_line(done.stderr) or _last_line(stdout.text())
        said = f": {last}" if last else ""
        return Result(host.name, Status.FAILED, details, error=f"exited {done.exit_code}{said}")
    last = _last_line(stdout.text())
    return Result(
        host.name, Status.CHANGED, details, summary=f"exited 0{': ' + last if last else ''}"
    )


def _tail(text: str) -> str:
    return mask_text(text[-TAIL_CHARACTERS:])


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return mask_text(lines[-1].strip()[:200]) if lines else ""
