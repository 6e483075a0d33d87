"""Scheduler benchmark: the daemon's own CPU and peak memory with 50 jobs, against `schedule`.

In the same time window, side by side, it runs

  product    `maint schedule.run` (python -m maintenance.cli) with JOBS jobs: FIRING of them
             every INTERVAL running `health.check` on a local host as child processes, the
             rest daily / weekly / monthly jobs that do not come due in the window
  baseline   the `schedule` package's idiomatic loop (`run_pending()` then `sleep(1)`) in a
             Python process with the same jobs, running the same command with subprocess

and reads from /proc each process's own CPU time (children excluded: the jobs cost the same
either way) and its peak RSS (VmHWM). Several rounds give medians; the machine is shared, so
read the two columns of one run against each other.

    python bench/scheduler.py [--jobs 50] [--duration 60] [--firing 2] [--interval 15] [--rounds 1]

Targets: the daemon under 1 % of one core and under 80 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.inventories import write_inventory  # noqa: E402

TARGET_CPU_PCT = 1.0
TARGET_RSS_MB = 80.0
WARM_UP_S = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEALTHY = {
    "ansible_connection": "local",
    "health": {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0},
}

# The same jobs for the `schedule` package; monthly is a daily job that checks the date.
BASELINE = """
import subprocess, sys, time, datetime, schedule
firing, interval, calendar_jobs = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
command = [sys.executable, "-m", "maintenance.cli", "health.check", "-i", sys.argv[1], "--json"]
def run():
    subprocess.run(command, capture_output=True, check=False)
def monthly():
    if datetime.date.today().day == 1:
        run()
for _ in range(firing):
    schedule.every(interval).seconds.do(run)
kinds = [lambda: schedule.every().day.at("03:00").do(run),
         lambda: schedule.every().sunday.at("04:00").do(run),
         lambda: schedule.every().day.at("05:00").do(monthly)]
for index in range(calendar_jobs):
    kinds[index % 3]()
while True:
    schedule.run_pending()
    time.sleep(1)
"""


@dataclass
class Contender:
    name: str
    cpu_pct: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    job_runs: list[int] = field(default_factory=list)


def schedule_for(jobs: int, firing: int, interval: int) -> list[dict]:
    """FIRING interval jobs, then daily / weekly / monthly ones at hours that are not now."""
    hour = (time.gmtime().tm_hour + 12) % 24
    entries = [
        {"task": "health.check", "every": f"{interval}s", "name": f"often-{index}"}
        for index in range(firing)
    ]
    kinds = [
        {"every": "day", "at": f"{hour:02d}:00"},
        {"every": "week", "on": "sunday", "at": f"{hour:02d}:10"},
        {"every": "month", "day": "last", "at": f"{hour:02d}:20"},
    ]
    for index in range(jobs - firing):
        entries.append({"task": "health.check", "name": f"cal-{index}", **kinds[index % 3]})
    return entries


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(own, children's) CPU seconds of PID from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_round(args: argparse.Namespace, workdir: Path, contenders: dict[str, Contender]) -> None:
    state = workdir / "state"
    inventory = write_inventory(
        workdir / "inv.yaml",
        {"h": HEALTHY},
        all_vars={
            "state_dir": str(state),
            "schedule": schedule_for(args.jobs, args.firing, args.interval),
        },
    )
    product = subprocess.Popen(
        [sys.executable, "-m", "maintenance.cli", "schedule.run", "-i", str(inventory)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "daemon.log", "w"),  # noqa: SIM115 - closed with the process
    )
    baseline = subprocess.Popen(
        [
            sys.executable,
            "-c",
            BASELINE,
            str(inventory),
            str(args.firing),
            str(args.interval),
            str(args.jobs - args.firing),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    processes = {"product": product, "baseline": baseline}
    try:
        time.sleep(WARM_UP_S)
        before = {name: cpu_seconds(proc.pid)[0] for name, proc in processes.items()}
        time.sleep(args.duration)
        for name, proc in processes.items():
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited early ({proc.returncode}); see {workdir}")
            used = cpu_seconds(proc.pid)[0] - before[name]
            contenders[name].cpu_pct.append(100 * used / args.duration)
            contenders[name].peak_rss_mb.append(peak_rss_mb(proc.pid))
    finally:
        for proc in processes.values():
            proc.terminate()
        for proc in processes.values():
            proc.wait(60)
    log = (workdir / "daemon.log").read_text()
    contenders["product"].job_runs.append(log.count('"event": "run finished"'))
    if product.returncode != 0:
        raise SystemExit(f"the daemon exited {product.returncode} on SIGTERM:\n{log[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50, help="jobs in the schedule (default 50)")
    parser.add_argument("--duration", type=float, default=60, help="measured seconds (default 60)")
    parser.add_argument("--firing", type=int, default=2, help="jobs that run in the window")
    parser.add_argument("--interval", type=int, default=15, help="their interval, s (default 15)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, for medians (default 1)")
    args = parser.parse_args()
    contenders = {name: Contender(name) for name in ("product", "baseline")}
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as scratch:
            print(f"round {round_number}/{args.rounds}: {args.duration:.0f} s ...", file=sys.stderr)
            one_round(args, Path(scratch), contenders)
    product, baseline = contenders["product"], contenders["baseline"]
    cpu = statistics.median(product.cpu_pct)
    rss = max(product.peak_rss_mb)
    print(f"{args.jobs} jobs ({args.firing} every {args.interval}s), {args.duration:.0f} s")
    print(f"{'':32}{'CPU % of a core':>17}{'peak RSS MB':>13}")
    for label, contender in (
        ("maint schedule.run (daemon)", product),
        ("schedule run_pending + sleep 1", baseline),
    ):
        print(
            f"{label:32}{statistics.median(contender.cpu_pct):>17.3f}"
            f"{max(contender.peak_rss_mb):>13.1f}"
        )
    print(f"targets: < {TARGET_CPU_PCT} % and < {TARGET_RSS_MB:.0f} MB; runs: {product.job_runs}")
    print(
        json.dumps(
            {
                "bench": "scheduler",
                "rounds": args.rounds,
                "jobs": args.jobs,
                "firing": args.firing,
                "interval_s": args.interval,
                "duration_s": args.duration,
                "product_cpu_pct": round(cpu, 3),
                "product_peak_rss_mb": round(rss, 1),
                "product_job_runs": statistics.median(product.job_runs),
                "baseline": "schedule run_pending() + sleep(1)",
                "baseline_cpu_pct": round(statistics.median(baseline.cpu_pct), 3),
                "baseline_peak_rss_mb": round(max(baseline.peak_rss_mb), 1),
                "targets_met": cpu < TARGET_CPU_PCT and rss < TARGET_RSS_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
