"""Bytes on the wire of a backup from an SSH host: compressed on the host against here.

Starts a PostgreSQL cluster and one sshd host on loopback through tests.harness, fills the
shop-like sample database (bench/sampledb.py, compresses about 3x) to --size-gb, and runs
backup.db of it from the SSH host into a local directory, in this process through the
product's own SSH runner with a counter on the channel (the stdout bytes the host sent:
what crossed the network, less SSH's framing), alternating over --rounds:

  host zstd     the host has zstd on PATH: the dump is compressed there (the default path)
  no host zstd  the host's PATH lacks zstd: the dump crosses uncompressed and is compressed
                here, as every SSH backup was before (same code path as before the change)

beside two OpenSSH baselines as whole processes, `ssh host pg_dump -Z0 | zstd` (compressed
here) and `ssh host 'pg_dump -Z0 | zstd'` (compressed there). The sshd is on this machine, so
both ends share its 2 cores: a real host compresses with its own.

    python bench/backup_wire.py [--size-gb 0.28] [--rounds 3]

Target (issue 18 item 2): bytes on the wire <= 1.3x the stored object with host zstd.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from backups.tasks.backup import BackupOptions, backup_host  # noqa: E402
from bench.measure import (  # noqa: E402
    Contender,
    Run,
    Sample,
    alternate,
    load_note,
    print_table,
    sigterm_as_interrupt,
    timed,
    verdict,
)
from bench.sampledb import grow_database  # noqa: E402
from bench.services import PG_BIN, bench_cluster, libpq_env  # noqa: E402
from maintenance.inventory import load_inventory  # noqa: E402
from tests.harness import Cluster, SshFleet, start_fleet  # noqa: E402
from tests.harness.wire import WireCountingRunner  # noqa: E402
from tests.inventories import fleet_vars, write_inventory  # noqa: E402

DATABASE = "shop"
GIB = 1024**3
TARGET_WIRE_RATIO = 1.3
HOST_ZSTD = "maint, host zstd"
NO_HOST_ZSTD = "maint, no host zstd"
SSH_HERE = "ssh pg_dump -Z0 | zstd (here)"
SSH_THERE = "ssh 'pg_dump -Z0 | zstd' (there)"
ZSTD = "zstd -3 -T0 -q -c"
# The host's PATH without zstd; pg_dump is found in its versioned directory all the same.
PATH_WITHOUT_ZSTD = str(PG_BIN)


def product(name: str, inventory: Path, store: Path, path: str | None) -> Contender:
    """backup.db of the database in this process; the dump's wire bytes and stored size."""

    def measure() -> Sample:
        [host] = list(load_inventory(inventory))
        cpu, started = os.times(), time.perf_counter()
        with WireCountingRunner(host, path) as runner:
            result = backup_host(host, runner, BackupOptions())
        seconds = time.perf_counter() - started
        used = os.times()
        [outcome] = result.details["databases"]
        if outcome["status"] != "ok":
            raise RuntimeError(f"{name} failed: {outcome.get('error')}")
        shutil.rmtree(store, ignore_errors=True)
        cpu_s = used.user + used.system - cpu.user - cpu.system
        run = Run(seconds=seconds, peak_rss_mb=0.0, tree_rss_mb=0.0, cpu_s=cpu_s, returncode=0,
                  stdout="", stderr="")  # fmt: skip
        return Sample(
            run,
            {"wire": max(runner.received), "size": outcome["size"],
             "raw_size": outcome["raw_size"]},
        )  # fmt: skip

    return Contender(name, measure)


def openssh(name: str, fleet: SshFleet, cluster: Cluster, workdir: Path, there: bool) -> Contender:
    """OpenSSH's client running pg_dump -Z0 on the host, zstd THERE or here, into a file."""
    dsn = cluster.dsn(DATABASE, with_password=False)
    dump = shlex.join([str(PG_BIN / "pg_dump"), "-Fc", "-Z0", "--no-password", "-d", dsn])
    ssh = fleet.ssh_argv(fleet.hosts[0], f"set -o pipefail; {dump} | {ZSTD}" if there else dump)
    ssh[1:1] = ["-o", "SendEnv=PGPASSWORD"]
    output = workdir / "raw.out"
    script = f"set -o pipefail; {shlex.join(ssh)}{'' if there else f' | {ZSTD}'} > {output}"

    def measure() -> Sample:
        run = timed(["bash", "-c", script], env=libpq_env(cluster), cwd=workdir)
        if run.returncode != 0:
            raise RuntimeError(f"{name} failed ({run.returncode}): {run.stderr[-2000:]}")
        size = output.stat().st_size
        output.unlink()
        return Sample(run, {"size": size})

    return Contender(name, measure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=0.28, help="database size (0.28)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="maint-bench-wire-"))
    try:
        with sigterm_as_interrupt(), bench_cluster("wire") as cluster:
            fleet = start_fleet(1, workdir / "ssh")
            try:
                size = grow_database(cluster, DATABASE, int(args.size_gb * GIB))
                store = workdir / "store"
                host = {
                    **fleet.hosts[0].inventory_vars(),
                    "postgres": {"dsn": cluster.dsn(), "databases": [DATABASE]},
                    "backup": {"store": str(store)},
                }
                inventory = write_inventory(
                    workdir / "inv.yaml", {"db1": host}, all_vars=fleet_vars(fleet)
                )
                inventory.chmod(0o600)
                contenders = [
                    product(HOST_ZSTD, inventory, store, None),
                    product(NO_HOST_ZSTD, inventory, store, PATH_WITHOUT_ZSTD),
                    openssh(SSH_HERE, fleet, cluster, workdir, there=False),
                    openssh(SSH_THERE, fleet, cluster, workdir, there=True),
                ]
                contenders[1].measure()  # untimed: the database into the page cache
                alternate(contenders, args.rounds)
            finally:
                fleet.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report(args, size, contenders, load_before)))
    return 0


def report(args, size: int, contenders: list[Contender], load_before: float) -> dict[str, Any]:
    print(f"database {size / 2**20:.0f} MiB, {args.rounds} rounds, medians", file=sys.stderr)
    rows, figures = [], {}
    for contender in contenders:
        wire = contender.median("wire") if "wire" in contender.samples[0].figures else None
        stored = contender.median("size")
        figures[contender.name] = {
            "seconds": contender.median(), "cpu_s": contender.median("cpu_s"),
            "wire_bytes": wire, "stored_bytes": stored,
            "wire_ratio": wire / stored if wire else None,
        }  # fmt: skip
        rows.append(
            [contender.name, contender.median(), contender.median("cpu_s"),
             None if wire is None else f"{wire / 2**20:.1f}", f"{stored / 2**20:.1f}",
             None if wire is None else wire / stored]
        )  # fmt: skip
    print_table(["", "wall s", "cpu s", "wire MiB", "stored MiB", "wire/stored"], rows)
    ratio = figures[HOST_ZSTD]["wire_ratio"]
    print(f"bytes on the wire / stored, host zstd: {ratio:.2f}x "
          f"(target <= {TARGET_WIRE_RATIO}x: {verdict(ratio, TARGET_WIRE_RATIO)}); "
          f"without host zstd {figures[NO_HOST_ZSTD]['wire_ratio']:.2f}x")  # fmt: skip
    print(load_note(load_before))
    return {"size_bytes": size, "rounds": args.rounds, "figures": figures}


if __name__ == "__main__":
    sys.exit(main())
