"""Log cleanup benchmark: `maint logs.clean` over SSH vs `find ... -delete` over plain ssh.

Starts one sshd-backed loopback host through tests.harness, builds a tree of N log files
(default 10 000 in 100 directories, half older than 14 days) once, and before every timed
run restores it with `cp -a` (untimed). Alternating over several rounds (medians), each a
whole process with a cold connection:

  product    `maint logs.clean -i INV --json` with the rule {path: TREE/**/*.log,
             delete_after: 14d} (a listing round trip, then one batched delete)
  find       `ssh HOST find TREE -type f -name '*.log' -mtime +14 -delete`

and, with --compress, the same pair for compression: the rule {compress_after: 1d} vs
`ssh HOST find TREE -type f -name '*.log' -mtime +1 -exec gzip -n {} +`.

    python bench/logs.py [--files 10000] [--rounds 5] [--compress]

Target: product <= 2x find.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shlex
import statistics
import sys
import time
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

TARGET = 2.0
DAY = 86400


def build_template(template: Path, files: int) -> int:
    """N files of 2 KiB in 100 directories, every other one 20 days old (the rest 3 days);
    owned by the fleet user. Return how many are older than 14 days."""
    user = pwd.getpwnam("fleet")
    now = time.time()
    payload = b"2026-01-01T00:00:00Z INFO request served in 12 ms\n" * 40
    old = 0
    for index in range(files):
        directory = template / f"svc{index % 100:03d}"
        if index < 100:
            directory.mkdir(parents=True)
            os.chown(directory, user.pw_uid, user.pw_gid)
        path = directory / f"app-{index}.log"
        path.write_bytes(payload)
        os.chown(path, user.pw_uid, user.pw_gid)
        age = 20 * DAY if index % 2 else 3 * DAY
        old += index % 2
        os.utime(path, (now - age, now - age))
    os.chown(template, user.pw_uid, user.pw_gid)
    return old


def count_files(tree: Path, suffix: str = ".log") -> int:
    return sum(name.endswith(suffix) for _, _, names in os.walk(tree) for name in names)


def product(
    fleet: SshFleet, workdir: Path, template: Path, tree: Path, rule: dict, expect: dict
) -> Contender:
    host = fleet.hosts[0]
    inventory = write_inventory(
        workdir / f"inventory-{'-'.join(sorted(expect))}.yaml",
        {
            host.name: fleet_hosts(fleet)[host.name]
            | {"logs": [{"path": f"{tree}/**/*.log", **rule}]}
        },
        all_vars=fleet_vars(fleet),
    )
    argv = [venv_command("maint"), "logs.clean", "-i", str(inventory), "--json"]

    def run(_: int) -> Run:
        put_back(template, tree)
        return timed(argv, workdir)

    def verify(run: Run) -> None:
        try:
            details = json.loads(run.stdout)["results"][0]["details"]
        except (ValueError, KeyError, IndexError):
            raise RuntimeError(f"maint exited {run.returncode}:\n{run.stderr[-3000:]}") from None
        done = {key: details[key] for key in expect}
        if run.returncode != 0 or done != expect:
            raise RuntimeError(f"maint logs.clean did {done}, expected {expect}")

    action = "delete" if "deleted" in expect else "compress"
    return Contender(f"maint logs.clean ({action})", run, verify)


def baseline(
    fleet: SshFleet, workdir: Path, template: Path, tree: Path, action: str, remaining: int
) -> Contender:
    tail = "-mtime +14 -delete" if action == "delete" else "-mtime +1 -exec gzip -n {} +"
    command = f"find {shlex.quote(str(tree))} -type f -name '*.log' {tail}"
    argv = fleet.ssh_argv(fleet.hosts[0], command)

    def run(_: int) -> Run:
        put_back(template, tree)
        return timed(argv, workdir)

    def verify(run: Run) -> None:
        if run.returncode != 0 or count_files(tree) != remaining:
            raise RuntimeError(f"ssh find left {count_files(tree)} .log files: {run.stderr}")

    return Contender(f"ssh find ({action})", run, verify)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="log files (default 10000)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--compress", action="store_true", help="also time compression")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with fleet_host_trees("maint-bench-logs-") as (fleet, workdir, trees):
        template, tree = trees / "template", trees / "tree"
        old = build_template(template, args.files)
        pairs = [
            (
                product(fleet, workdir, template, tree, {"delete_after": "14d"}, {"deleted": old}),
                baseline(fleet, workdir, template, tree, "delete", args.files - old),
            )
        ]
        if args.compress:
            rule = {"compress_after": "1d"}
            pairs.append(
                (
                    product(fleet, workdir, template, tree, rule, {"compressed": args.files}),
                    baseline(fleet, workdir, template, tree, "compress", 0),
                )
            )
        the_startup = startup(workdir)
        contenders = [contender for pair in pairs for contender in pair] + [the_startup]
        measure(contenders, args.rounds, args.warmup, fleet.logins)
    print(json.dumps(report(args, pairs, the_startup, load_before)))
    return 0


def report(
    args: argparse.Namespace,
    pairs: list[tuple[Contender, Contender]],
    the_startup: Contender,
    load_before: float,
) -> dict[str, object]:
    """Print the table and the ratios against the target; return the JSON figures."""
    print(
        f"\nlogs: {args.files} files in 100 directories over SSH (1 host), {args.rounds} rounds "
        f"(+{args.warmup} warm-up), cold connections, whole process; tree restored untimed"
    )
    print(f"{'what':<32} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}")
    figures: dict[str, object] = {"bench": "logs", "files": args.files, "rounds": args.rounds}
    for the_product, the_baseline in pairs:
        product_s = statistics.median(the_product.times)
        baseline_s = statistics.median(the_baseline.times)
        for contender, median in ((the_product, product_s), (the_baseline, baseline_s)):
            print(
                f"{contender.name:<32} {median:>9.2f} {min(contender.times):>7.2f} "
                f"{max(contender.times):>7.2f} {median / baseline_s:>6.2f}x"
            )
        key = "" if "delete" in the_product.name else "compress_"
        figures |= {
            f"{key}product_s": round(product_s, 3),
            f"{key}baseline_s": round(baseline_s, 3),
            f"{key}ratio": round(product_s / baseline_s, 3),
        }
    startup_s = statistics.median(the_startup.times)
    print(
        f"{the_startup.name:<32} {startup_s:>9.2f} {min(the_startup.times):>7.2f} "
        f"{max(the_startup.times):>7.2f}"
    )
    figures["baseline"] = "ssh find -mtime +14 -delete"
    figures["product_startup_s"] = round(startup_s, 3)
    delete_s, find_s = (statistics.median(c.times) for c in pairs[0])
    figures["ratio_without_startup"] = round((delete_s - startup_s) / find_s, 3)
    figures["product_peak_rss_mb"] = round(pairs[0][0].peak_rss_mb, 1)
    print(load_note(load_before))
    ratio = figures["ratio"]
    assert isinstance(ratio, float)
    print(
        f"\nproduct / find (delete) = {ratio:.2f} (target <= {TARGET})"
        + ("" if ratio <= TARGET else "  MISSED")
        + f"; without maint's start-up: {figures['ratio_without_startup']:.2f}"
    )
    return figures


if __name__ == "__main__":
    sys.exit(main())
