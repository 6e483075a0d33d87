"""Local stand-ins for S3 (moto) and Google Cloud Storage (gcp-storage-emulator).

Both run as separate processes so the product's boto3 / google-cloud-storage clients go
through real HTTP, just as they would against the cloud.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .net import free_port, log_tail, wait_until


@dataclass
class Service:
    """A background HTTP service process and the URL clients should use."""

    url: str
    process: subprocess.Popen
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, *, keep_log: bool = False) -> None:
        """Terminate the process (kill if it ignores SIGTERM); delete its log unless kept."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if not keep_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def start_moto() -> Service:
    """moto's standalone S3-compatible server; any access key id / secret is accepted."""
    return _start("moto", ["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"], ready=_http_ok)


def start_gcs_emulator() -> Service:
    """In-memory GCS emulator; clients need STORAGE_EMULATOR_HOST set to ``url``.

    It never frees memory, so callers should not keep one alive for a whole long session.
    """
    return _start(
        "gcs",
        [
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host=127.0.0.1",
            "--port={port}",
            "--in-memory",
            "-q",
        ],
        ready=_http_answers,
    )


def _start(kind: str, args: list[str], ready, timeout: float = 30.0) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A file, not a pipe: a chatty server would block once an unread pipe fills up.
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the service
        prefix=f"maint-{kind}-", suffix=".log", delete=False
    )
    process = subprocess.Popen(
        [sys.executable, *(arg.format(port=port) for arg in args)],
        cwd="/tmp",
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    service = Service(url, process, Path(log_file.name), log_file)
    if not wait_until(
        lambda: ready(url), timeout=timeout, interval=0.1, alive=lambda: process.poll() is None
    ):
        code = process.poll()
        service.stop(keep_log=True)
        state = f"exited with {code}" if code is not None else f"not ready after {timeout}s"
        raise RuntimeError(f"{kind} server at {url} {state}:\n{log_tail(service.log_path)}")
    return service


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/", timeout=1) as response:  # noqa: S310
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _http_answers(url: str) -> bool:
    """Any HTTP response (even 404) means the server is accepting requests."""
    try:
        with urllib.request.urlopen(url + "/", timeout=1):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, urllib.error.URLError):
        return False
