"""Rotation benchmark: `maint logs.rotate` over SSH vs `ssh HOST logrotate -s STATE CONF`.

Starts one sshd-backed loopback host through tests.harness (user fleet, a plain shell) and
builds a tree of N live logs (default 1 000 in 10 directories, 16 KiB of log lines each),
each with a rotated history (`.1` plain, `.2.gz` to `.5.gz`; --history 30 is the runbook's
steady state), owned by the fleet user. Both
tools get the birthday-scheduler runbook's configuration (daily, rotate 30, compress,
delaycompress, missingok, notifempty, create, a postrotate run once: `sharedscripts` for
logrotate, an inventory rule for the product) and a state saying every file last rotated
yesterday: each tool sees the tree once (its first sight rotates nothing), then its state is
moved one day back. Before every timed run the tree and that tool's state are put back with
`cp -a` (untimed). Alternating over several rounds (medians), each a whole process with a
cold connection:

  product    `maint logs.rotate -i INV --json` (one listing round trip, one script)
  logrotate  `ssh HOST /usr/sbin/logrotate -s STATE CONF`

Each run must rotate every file: N `.1` files, N new `.2.gz`, every history one longer (up to
30), N empty live files, the postrotate run once.

    python bench/rotate.py [--files 1000] [--history 5] [--rounds 5]

Target: product <= 2x logrotate.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.fanout import (  # noqa: E402
    Contender,
    Run,
    measure,
    startup,
    timed,
)
from bench.measure import load_note, put_back, venv_command  # noqa: E402
from bench.services import fleet_host_trees  # noqa: E402
from tests.harness import SshFleet  # noqa: E402
from tests.inventories import fleet_hosts, fleet_vars, write_inventory  # noqa: E402
from tests.logrotate_sim import (  # noqa: E402
    LOGROTATE,
    age_logrotate_state,
    age_maint_state,
    maint_state_file,
)

TARGET = 2.0
DIRECTORIES = 10
KEEP = 30  # the runbook's `rotate 30`
LINE = b"2026-12-05T10:00:00Z INFO birthday-scheduler: job 4711 sent 12 greetings in 35 ms\n"


def build_tree(tree: Path, files: int, history: int) -> None:
    """FILES live logs in DIRECTORIES directories, each with HISTORY rotated files (`.1`,
    then `.2.gz` and on)."""
    user = pwd.getpwnam("fleet")
    body = LINE * (16384 // len(LINE))
    compressed = subprocess.run(["gzip", "-n"], input=body, capture_output=True, check=True).stdout
    tree.mkdir()
    for index in range(files):
        directory = tree / f"svc{index % DIRECTORIES:02d}"
        directory.mkdir(exist_ok=True)
        name = f"app-{index}.log"
        (directory / name).write_bytes(body)
        (directory / f"{name}.1").write_bytes(body)
        for number in range(2, history + 1):
            (directory / f"{name}.{number}.gz").write_bytes(compressed)
    for root, dirs, names in os.walk(tree):
        for name in [*dirs, *names]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    os.chown(tree, user.pw_uid, user.pw_gid)


def logrotate_config(tree: Path, marker: Path) -> str:
    return f"""{tree}/*/*.log {{
    daily
    rotate 30
    compress
    delaycompress
    missingok
    notifempty
    create 0644 fleet fleet
    sharedscripts
    postrotate
        echo ran >> {marker}
    endscript
}}
"""


def product_rule(tree: Path, marker: Path) -> dict[str, object]:
    return {
        "path": f"{tree}/*/*.log",
        "rotate": "daily",
        "keep": 30,
        "compress": "gz",
        "delay_compress": True,
        "missing_ok": True,
        "not_if_empty": True,
        "create": "0644 fleet fleet",
        "postrotate": f"echo ran >> {marker}",
    }


def primed(
    argv: list[str],
    workdir: Path,
    trees: tuple[Path, Path],
    states: tuple[Path, Path],
    age: Callable[[Path], None],
    who: str,
) -> Callable[[int], Run]:
    """A tool's timed run with its state primed: it sees the tree (SAVED put back at TREE)
    once, rotating nothing; AGE moves its STATE one day back, kept as SAVED_STATE; every run
    then starts from that tree and state, put back untimed."""
    saved, tree = trees
    state, saved_state = states
    put_back(saved, tree)
    first = timed(argv, workdir)
    if first.returncode != 0 or not state.exists():
        raise RuntimeError(f"{who}'s first sight of the tree failed:\n{first.stderr[-3000:]}")
    age(state)
    subprocess.run(["cp", "-a", str(state), str(saved_state)], check=True)

    def run(_: int) -> Run:
        put_back(saved, tree)
        put_back(saved_state, state)
        return timed(argv, workdir)

    return run


def check_rotated(tree: Path, files: int, history: int, marker: Path, who: str) -> None:
    """Raise unless every live file rotated once (an empty live file, a plain `.1`, a new
    `.2.gz`, the history one longer up to KEEP) and the postrotate ran once."""
    plain = compressed = rotated = empty = 0
    for _, _, names in os.walk(tree):
        for name in names:
            plain += name.endswith(".log.1")
            compressed += name.endswith(".log.2.gz")
            rotated += ".log." in name
    for directory in tree.iterdir():
        empty += sum(1 for path in directory.glob("*.log") if path.stat().st_size == 0)
    runs = len(marker.read_text().splitlines()) if marker.exists() else 0
    expected = (files, files, files * min(history + 1, KEEP), files, 1)
    if (plain, compressed, rotated, empty, runs) != expected:
        raise RuntimeError(
            f"{who}: {plain} .1 files, {compressed} .2.gz, {rotated} rotated files, {empty}"
            f" empty live files, postrotate ran {runs} times; expected {expected}"
        )
    marker.unlink()


def product(
    fleet: SshFleet, workdir: Path, home: Path, saved: Path, tree: Path, files: int, history: int
) -> Contender:
    """`maint logs.rotate` with its state primed; tree and state restored before each run.
    Its state directory (the `state_dir` var) and postrotate marker are in HOME."""
    host = fleet.hosts[0]
    user = pwd.getpwnam("fleet")
    home.mkdir()
    os.chown(home, user.pw_uid, user.pw_gid)
    marker = home / "maint.postrotate"
    inventory = write_inventory(
        workdir / "inventory.yaml",
        {host.name: fleet_hosts(fleet)[host.name] | {"logs": [product_rule(tree, marker)]}},
        all_vars=fleet_vars(fleet) | {"state_dir": str(home)},
    )
    argv = [venv_command("maint"), "logs.rotate", "-i", str(inventory), "--json"]
    states = (maint_state_file(home, host.name), workdir / "maint.state")
    run = primed(argv, workdir, (saved, tree), states, age_maint_state, "maint")

    def verify(run: Run) -> None:
        try:
            json.loads(run.stdout)["results"][0]["details"]
        except (ValueError, KeyError, IndexError):
            raise RuntimeError(f"maint exited {run.returncode}:\n{run.stderr[-3000:]}") from None
        if run.returncode != 0:
            raise RuntimeError(f"maint exited {run.returncode}:\n{run.stderr[-3000:]}")
        check_rotated(tree, files, history, marker, "maint logs.rotate")

    return Contender("maint logs.rotate", run, verify, ssh_logins=1)


def baseline(
    fleet: SshFleet, workdir: Path, home: Path, saved: Path, tree: Path, files: int, history: int
) -> Contender:
    """`logrotate -s STATE CONF` over plain ssh, with a state primed the same way; its
    configuration and state in HOME, owned by the fleet user (logrotate ignores a
    configuration owned by another user than root or itself)."""
    user = pwd.getpwnam("fleet")
    home.mkdir()
    marker = home / "logrotate.postrotate"
    config, state, saved_state = home / "rotate.conf", home / "state", workdir / "logrotate.state"
    config.write_text(logrotate_config(tree, marker))
    for path in (home, config):
        os.chown(path, user.pw_uid, user.pw_gid)
    argv = fleet.ssh_argv(fleet.hosts[0], f"{LOGROTATE} -s {state} {config}")
    run = primed(
        argv, workdir, (saved, tree), (state, saved_state), age_logrotate_state, "logrotate"
    )

    def verify(run: Run) -> None:
        if run.returncode != 0:
            raise RuntimeError(f"logrotate exited {run.returncode}: {run.stderr[-2000:]}")
        check_rotated(tree, files, history, marker, "logrotate")

    return Contender("ssh logrotate", run, verify, ssh_logins=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="live log files (default 1000)")
    parser.add_argument(
        "--history", type=int, default=5, help="rotated files per live file (default 5)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with fleet_host_trees("maint-bench-rotate-") as (fleet, workdir, trees):
        saved, tree = trees / "saved", trees / "tree"
        build_tree(saved, args.files, args.history)
        sizes = (saved, tree, args.files, args.history)
        the_product = product(fleet, workdir, trees / "maint", *sizes)
        the_baseline = baseline(fleet, workdir, trees / "logrotate", *sizes)
        the_startup = startup(workdir)
        contenders = [the_product, the_baseline, the_startup]
        measure(contenders, args.rounds, args.warmup, fleet.logins)
    print(json.dumps(report(args, the_product, the_baseline, the_startup, load_before)))
    return 0


def report(
    args: argparse.Namespace,
    the_product: Contender,
    the_baseline: Contender,
    the_startup: Contender,
    load_before: float,
) -> dict[str, object]:
    """Print the table and the ratio against the target; return the JSON figures."""
    print(
        f"\nrotate: {args.files} live files in {DIRECTORIES} directories (each with "
        f"{args.history} rotated files) over SSH (1 host), {args.rounds} rounds (+{args.warmup} "
        "warm-up), cold connections, whole process; tree and state restored untimed"
    )
    print(f"{'what':<28} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>6} {'ratio':>7}")
    baseline_s = statistics.median(the_baseline.times)
    for contender in (the_product, the_baseline, the_startup):
        median = statistics.median(contender.times)
        print(
            f"{contender.name:<28} {median:>9.2f} {min(contender.times):>7.2f} "
            f"{max(contender.times):>7.2f} {statistics.median(contender.cpu_times):>6.2f} "
            f"{median / baseline_s:>6.2f}x"
        )
    product_s = statistics.median(the_product.times)
    startup_s = statistics.median(the_startup.times)
    ratio = product_s / baseline_s
    figures: dict[str, object] = {
        "bench": "rotate",
        "files": args.files,
        "history": args.history,
        "rounds": args.rounds,
        "product_s": round(product_s, 3),
        "baseline_s": round(baseline_s, 3),
        "baseline": "ssh host logrotate -s STATE CONF",
        "ratio": round(ratio, 3),
        "product_startup_s": round(startup_s, 3),
        "ratio_without_startup": round((product_s - startup_s) / baseline_s, 3),
        "product_peak_rss_mb": round(the_product.peak_rss_mb, 1),
    }
    print(f"maint peak RSS {the_product.peak_rss_mb:.1f} MiB (the largest process of its tree)")
    print(load_note(load_before))
    print(
        f"\nproduct / logrotate = {ratio:.2f} (target <= {TARGET})"
        + ("" if ratio <= TARGET else "  MISSED")
        + f"; without maint's start-up: {figures['ratio_without_startup']:.2f}"
    )
    return figures


if __name__ == "__main__":
    sys.exit(main())
