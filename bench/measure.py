"""Timing whole processes (wall time, peak memory) and alternating contenders over rounds.

CPU time (user + system of the process and every descendant it waited for) is steadier than
wall time on a shared machine; it leaves out the PostgreSQL server's own work. Peak memory is
measured two ways: the process's own high-water mark (VmHWM from
/proc/<pid>/status, polled while it runs; the kernel keeps the maximum, so a poll misses at
most the growth of its last few milliseconds) and ru_maxrss from wait4, which is the largest
single process of the tree it waited for (pg_dump under the product, zstd in a shell pipe).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POLL_S = 0.02


@dataclass
class Run:
    """One finished process."""

    seconds: float
    peak_rss_mb: float  # VmHWM of the process itself
    tree_rss_mb: float  # ru_maxrss: the largest process of the tree it waited for
    cpu_s: float  # user + system time of the process and the children it waited for
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Sample:
    """What one round of a contender measured: the run and any figures read from its output."""

    run: Run
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Contender:
    """A way of doing the job; MEASURE runs it once and raises if it did not really do it."""

    name: str
    measure: Callable[[], Sample]
    samples: list[Sample] = field(default_factory=list)

    def median(self, what: str = "seconds") -> float:
        return statistics.median(self.values(what))

    def values(self, what: str) -> list[float]:
        if what in ("seconds", "peak_rss_mb", "tree_rss_mb", "cpu_s"):
            return [getattr(sample.run, what) for sample in self.samples]
        return [sample.figures[what] for sample in self.samples]


def venv_command(name: str) -> str:
    """The console script next to this interpreter (a pyenv shim would add a bash process)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        sys.exit(f"`{name}` not found: install the product first (pip install -e .)")
    return found


def timed(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path) -> Run:
    """Run ARGV to completion in its own session; interrupted, its whole group is killed."""
    out_path, err_path = cwd / "run.stdout", cwd / "run.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env={**os.environ, **env} if env else None,
            cwd=cwd,
            start_new_session=True,
        )
        high_water = _HighWater(process.pid)
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        finally:
            high_water.stop()
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen in step
    return Run(
        seconds,
        high_water.kib / 1024,
        usage.ru_maxrss / 1024,  # KiB on Linux
        usage.ru_utime + usage.ru_stime,
        process.returncode,
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
    )


class _HighWater:
    """Polls VmHWM of PID until stopped; keeps the last value read before the process exits."""

    def __init__(self, pid: int) -> None:
        self.kib = 0
        self._path = Path(f"/proc/{pid}/status")
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.is_set():
            with contextlib.suppress(OSError):
                for line in self._path.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
            self._done.wait(POLL_S)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def pipeline(name: str, command: str, env: Mapping[str, str], workdir: Path) -> Contender:
    """A bash pipeline COMMAND writing {out} (pipefail on); its size is recorded and the file
    removed, so a baseline's output costs no disk between rounds."""
    output = workdir / "raw.out"

    def measure() -> Sample:
        script = f"set -o pipefail; {command.format(out=shlex.quote(str(output)))}"
        run = timed(["bash", "-c", script], env=env, cwd=workdir)
        if run.returncode != 0 or not output.exists():
            raise RuntimeError(f"{name} failed ({run.returncode}): {run.stderr[-2000:]}")
        size = output.stat().st_size
        output.unlink()
        return Sample(run, {"size": size})

    return Contender(name, measure)


def put_back(saved: Path, live: Path) -> None:
    """Put LIVE (a tree or a file) back as SAVED has it, mtimes, modes and owners kept:
    untimed preparation of a run that changes what it works on."""
    if live.is_dir():
        shutil.rmtree(live)
    else:
        live.unlink(missing_ok=True)
    subprocess.run(["cp", "-a", str(saved), str(live)], check=True)


def alternate(contenders: list[Contender], rounds: int, label: str = "") -> None:
    """Run every contender once per round, rotating who goes first; progress on stderr."""
    for number in range(rounds):
        shift = number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            contender.samples.append(contender.measure())
        figures = ", ".join(f"{c.name} {c.samples[-1].run.seconds:.1f}s" for c in contenders)
        print(f"{label}round {number + 1}/{rounds}: {figures}", file=sys.stderr, flush=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain text table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = [row[0].ljust(widths[0])] + [
            v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(line).rstrip())


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"


def load_note(before: float) -> str:
    """The machine's load around the run: other work makes the timings noisy."""
    return (
        f"load average before/after: {before:.1f}/{os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (other work on this machine makes timings noisy; "
        "ratios from the same run are what count)"
    )


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Let SIGTERM unwind like Ctrl-C, so `finally` blocks remove clusters and servers."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
