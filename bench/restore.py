"""Restore-drill benchmark: `maint restore.verify` against raw pg_restore of the same dump.

Starts a "prod" and a "staging" PostgreSQL cluster through tests.harness, fills a database of
--size-gb on prod with shop-like rows (bench/sampledb.py), backs it up once with
`maint backup.db` into a local store, and decompresses that backup to a local file. Then it
times as whole processes, alternating over several rounds (medians):

  pg_restore                 the uncompressed local file into a fresh database on staging
  pg_restore --jobs 2        the same in parallel: the baseline of the target
  pg_restore --jobs 2 of pg_dump's own file
                             `pg_dump -Fc -Z0 -f file` of the same database: written to a
                             seekable file, its table of contents holds the data offsets that
                             a dump streamed through a pipe (as every backup is) lacks
  maint restore.verify       the whole drill: fetch and sha256 check of the stored backup,
                             scratch database and pg_restore runs overlapping the download
                             (backups/postgres/streamed_restore.py), row counts against the
                             manifest, drop
  (--s3) the same drill reading the backup from a moto S3 server; with --s3-rate MBPS the
       server's responses are paced to MBPS MB/s (tests/harness/faults.py), as a link to a
       real object store would be: the case where the download is slower than the machine

Creating and dropping the raw tools' databases is not timed; the drill's own steps are.

    python bench/restore.py [--size-gb 1] [--rounds 3] [--s3] [--s3-rate MBPS]

Target (issue 18): the whole drill <= 1.05x raw `pg_restore --jobs 2` of the same uncompressed
custom-format dump in a local file (issue 5's target was 1.25x). The ratio to pg_dump's own
seekable file is printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.measure import (  # noqa: E402
    Contender,
    Sample,
    alternate,
    load_note,
    print_table,
    sigterm_as_interrupt,
    timed,
    venv_command,
    verdict,
)
from bench.sampledb import grow_database, row_counts  # noqa: E402
from bench.services import (  # noqa: E402
    PG_BIN,
    S3_ENV,
    bench_cluster,
    libpq_env,
    moto_server,
    s3_client,
)
from tests.harness import Cluster  # noqa: E402
from tests.harness.faults import FaultProxy  # noqa: E402
from tests.inventories import write_inventory  # noqa: E402

DATABASE = "shop"
RAW_TARGET = "bench_raw_restore"
BUCKET = "bench-drills"
GIB = 1024**3
MIB = 1024**2
TARGET_VS_RESTORE_J2 = 1.05
STEPS = ("manifest_s", "download_s", "create_s", "restore_s", "checks_s", "drop_s")
# Download, scratch database and restore overlap: their wall time together.
OVERLAPPED = "fetch_and_restore_s"

PG_RESTORE = "pg_restore (1 job)"
PG_RESTORE_J2 = "pg_restore --jobs 2"
PG_RESTORE_J2_OFFSETS = "pg_restore --jobs 2, pg_dump -f file"
DRILL = "maint restore.verify"
DRILL_S3 = "maint restore.verify (S3)"


class Setup:
    """Clusters, inventory, the product's backup and its uncompressed copy."""

    def __init__(self, prod: Cluster, staging: Cluster, workdir: Path, s3_url: str | None):
        self.prod, self.staging, self.workdir = prod, staging, workdir
        self.maint = venv_command("maint")
        self.store_dir = workdir / "store"
        source = {
            "ansible_connection": "local",
            "postgres": {"dsn": prod.dsn(), "databases": [DATABASE]},
            "restore_target": "staging1",
        }
        hosts = {
            "prod1": {**source, "backup": {"store": str(self.store_dir)}},
            "staging1": {
                "ansible_connection": "local",
                "postgres": {"dsn": staging.dsn()},
                "restore": {"tmp_dir": str(workdir)},
            },
        }
        if s3_url is not None:
            store = {"store": f"s3://{BUCKET}/drills", "endpoint_url": s3_url}
            hosts["prod1s3"] = {**source, "backup": store}
        self.inventory = write_inventory(workdir / "inventory.yaml", hosts)
        self.inventory.chmod(0o600)
        self.expected = row_counts(prod, DATABASE)

    def maint_json(self, *args: str) -> tuple[Any, dict[str, Any]]:
        """Run `maint ARGS --json` timed; return the run and the host's result (or raise)."""
        run = timed(
            [self.maint, *args, "-i", str(self.inventory), "--json"], env=S3_ENV, cwd=self.workdir
        )
        try:
            [result] = json.loads(run.stdout)["results"]
        except (ValueError, KeyError) as exc:
            raise RuntimeError(
                f"maint {args[0]}: no report ({exc}): {run.stderr[-2000:]}"
            ) from None
        if run.returncode != 0 or result["status"] != "ok":
            raise RuntimeError(f"maint {args[0]} failed: {result['error']}: {run.stderr[-2000:]}")
        return run, result

    def backup(self, source: str) -> dict[str, Any]:
        """One product backup of SOURCE (untimed for the ratios; reported)."""
        run, result = self.maint_json("backup.db", "--limit", source)
        [outcome] = result["details"]["databases"]
        return outcome | {"seconds": run.seconds}

    def local_dump(self, key: str) -> Path:
        """The stored backup decompressed to a local file: what the raw tools restore."""
        path = self.workdir / "shop.dump"
        subprocess.run(
            ["zstd", "-d", "-q", "-f", str(self.store_dir / key), "-o", str(path)], check=True
        )
        return path

    def seekable_dump(self) -> Path:
        """`pg_dump -Fc -Z0 -f FILE`: the same data, with the data offsets in its TOC."""
        path = self.workdir / "seekable.dump"
        dsn = self.prod.dsn(DATABASE, with_password=False)
        argv = [str(PG_BIN / "pg_dump"), "--format=custom", "--compress=0", "--no-password"]
        argv += [f"--file={path}", f"--dbname={dsn}"]
        run = timed(argv, env=libpq_env(self.prod), cwd=self.workdir)
        if run.returncode != 0:
            raise RuntimeError(f"pg_dump -f failed: {run.stderr[-2000:]}")
        return path

    def raw(self, name: str, dump: Path, jobs: int) -> Contender:
        dsn = self.staging.dsn(RAW_TARGET, with_password=False)
        argv = [str(PG_BIN / "pg_restore"), "--no-owner", "--no-acl", "--exit-on-error"]
        argv += [f"--jobs={jobs}", "--no-password", f"--dbname={dsn}", str(dump)]

        def measure() -> Sample:
            self.staging.create_database(RAW_TARGET)
            try:
                run = timed(argv, env=libpq_env(self.staging), cwd=self.workdir)
                if run.returncode != 0:
                    raise RuntimeError(f"{name} failed: {run.stderr[-2000:]}")
                restored = row_counts(self.staging, RAW_TARGET)
                if restored != self.expected:
                    raise RuntimeError(f"{name}: {restored} rows, expected {self.expected}")
            finally:
                self.staging.drop_database(RAW_TARGET)
            return Sample(run)

        return Contender(name, measure)

    def drill(self, name: str, source: str) -> Contender:
        def measure() -> Sample:
            run, result = self.maint_json("restore.verify", "--limit", source)
            [drill] = result["details"]["drills"]
            compared = {count["table"] for count in drill["counts"] if count["ok"]}
            if not drill["ok"] or compared != {f"public.{table}" for table in self.expected}:
                raise RuntimeError(f"{name}: drill did not compare every table: {drill}")
            left = self.staging.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'maint_verify_%'"
            )
            if left:
                raise RuntimeError(f"{name}: scratch databases left behind: {left}")
            steps = drill["steps"]
            overlapped = steps.get(OVERLAPPED)
            if overlapped is None:  # a drill that fetched first: the three steps in a row
                overlapped = steps["download_s"] + steps["create_s"] + steps["restore_s"]
            return Sample(run, {**{step: steps[step] for step in STEPS}, OVERLAPPED: overlapped})

        return Contender(name, measure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="database size (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--s3", action="store_true", help="also drill from a moto S3 server")
    parser.add_argument(
        "--s3-rate", type=float, metavar="MBPS", help="with --s3: pace S3 responses to MBPS MB/s"
    )
    args = parser.parse_args()
    if args.s3_rate is not None and (args.s3_rate <= 0 or not args.s3):
        parser.error("--s3-rate wants --s3 and a rate above 0 MB/s")

    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="maint-bench-restore-"))
    try:
        with sigterm_as_interrupt(), ExitStack() as stack:
            prod = stack.enter_context(bench_cluster("prod"))
            staging = stack.enter_context(bench_cluster("staging"))
            s3_url = None
            if args.s3:
                moto = stack.enter_context(moto_server())
                s3_client(moto).create_bucket(Bucket=BUCKET)
                s3_url = moto.url
                if args.s3_rate:
                    rate = args.s3_rate * 1e6
                    s3_url = stack.enter_context(FaultProxy(moto.url, rate=rate)).url
            size = grow_database(prod, DATABASE, int(args.size_gb * GIB))
            setup = Setup(prod, staging, workdir, s3_url)
            backup = setup.backup("prod1")
            dump = setup.local_dump(backup["key"])
            contenders = [
                setup.raw(PG_RESTORE, dump, jobs=1),
                setup.raw(PG_RESTORE_J2, dump, jobs=2),
                setup.raw(PG_RESTORE_J2_OFFSETS, setup.seekable_dump(), jobs=2),
                setup.drill(DRILL, "prod1"),
            ]
            if args.s3:
                setup.backup("prod1s3")
                contenders.append(setup.drill(DRILL_S3, "prod1s3"))
            alternate(contenders, args.rounds)
            dump_size = dump.stat().st_size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report(args, size, dump_size, backup, contenders, load_before)))
    return 0


def report(args, size, dump_size, backup, contenders, load_before) -> dict[str, Any]:
    """Print the tables and the verdict; return the JSON figures."""
    by_name = {c.name: c for c in contenders}
    single, parallel, drill = by_name[PG_RESTORE], by_name[PG_RESTORE_J2], by_name[DRILL]
    baseline = parallel.median()
    print(
        f"\nrestore: database {DATABASE} {size / GIB:.2f} GiB, custom dump "
        f"{dump_size / GIB:.2f} GiB uncompressed ({backup['size'] / MIB:.0f} MiB stored as "
        f"zstd, backed up by maint in {backup['seconds']:.1f} s); {args.rounds} rounds "
        "alternating, medians; whole processes"
    )
    rows = []
    for contender in contenders:
        seconds = contender.median()
        product = contender.name.startswith("maint")
        rows.append([
            contender.name, seconds, min(contender.values("seconds")),
            max(contender.values("seconds")), seconds / baseline, seconds / single.median(),
            f"{max(contender.values('peak_rss_mb')):.0f}" if product else "-",
        ])  # fmt: skip
    print_table(["what", "median s", "min s", "max s", "vs -j2", "vs 1 job", "own RSS MiB"], rows)
    print(load_note(load_before))

    drills = [c for c in contenders if c.name.startswith("maint")]
    print(
        "\ndrill steps (medians, s; download, create and restore overlap, 'together' is their"
        " wall time; 'other' = process start, inventory, store listing, record)"
    )
    step_rows = []
    for contender in drills:
        steps = {step: contender.median(step) for step in (*STEPS, OVERLAPPED)}
        serial = ("manifest_s", OVERLAPPED, "checks_s", "drop_s")
        other = contender.median() - sum(steps[step] for step in serial)
        step_rows.append([contender.name, *steps.values(), other])
    names = [step.removesuffix("_s") for step in STEPS]
    print_table(["drill", *names, "together", "other"], step_rows)

    ratio = drill.median() / baseline
    restore_ratio = drill.median("restore_s") / baseline
    seekable = by_name[PG_RESTORE_J2_OFFSETS].median()
    print("\ntarget")
    print(
        f"  drill / pg_restore --jobs 2 = {ratio:.2f}  (<= {TARGET_VS_RESTORE_J2}: "
        f"{verdict(ratio, TARGET_VS_RESTORE_J2)}); its restore step alone: {restore_ratio:.2f}"
    )
    print(
        f"  same file / pg_dump's own file, both --jobs 2 = {baseline / seekable:.2f} "
        "(the cost of a TOC without data offsets); "
        f"drill / pg_dump's own file = {drill.median() / seekable:.2f}"
    )
    result: dict[str, Any] = {
        "bench": "restore",
        "rounds": args.rounds,
        "database_mb": round(size / MIB),
        "dump_raw_mb": round(dump_size / MIB),
        "stored_mb": round(backup["size"] / MIB),
        "product_s": round(drill.median(), 2),
        "baseline": "pg_restore --jobs 2",
        "baseline_s": round(baseline, 2),
        "ratio": round(ratio, 3),
        "pg_restore_1job_s": round(single.median(), 2),
        "ratio_1job": round(drill.median() / single.median(), 3),
        "pg_restore_j2_seekable_s": round(seekable, 2),
        "no_offsets_ratio": round(baseline / seekable, 3),
        "ratio_seekable": round(drill.median() / seekable, 3),
        "steps": {step: round(drill.median(step), 2) for step in (*STEPS, OVERLAPPED)},
        "restore_step_ratio": round(restore_ratio, 3),
        "product_peak_rss_mb": round(max(drill.values("peak_rss_mb"))),
        "target_met": ratio <= TARGET_VS_RESTORE_J2,
        "load_avg": round(os.getloadavg()[0], 1),
    }
    if DRILL_S3 in by_name:
        s3 = by_name[DRILL_S3]
        result |= {
            "product_s3_s": round(s3.median(), 2),
            "ratio_s3": round(s3.median() / baseline, 3),
            "s3_download_s": round(s3.median("download_s"), 2),
            "s3_rate_mbps": args.s3_rate,
        }
    return result


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted: clusters, servers and scratch files removed")
