"""Backup benchmark: `maint backup.db` against raw pg_dump pipelines on a generated database.

Starts a PostgreSQL cluster and a moto S3 server through tests.harness, fills a database of
--size-gb with shop-like rows that compress like real data (see bench/sampledb.py), and
times as whole processes, alternating over several rounds (medians):

  pg_dump -Fc > file                    pg_dump's built-in zlib: the tool the product replaces
  pg_dump -Fc -Z0 > file                no compression: the floor of any custom-format dump
  pg_dump -Fc -Z0 | zstd -3 -T0 > file  the codec the product uses, as raw tools
  maint backup.db -> local directory    the product (pg_dump -Z0, zstd and sha256 in-process)
  maint backup.db -> S3                 the same into the moto server (multipart upload)
  ssh host pg_dump -Fc -Z0 | zstd -3 -T0 > file
                                        the raw pipe from an SSH host (OpenSSH client)
  maint backup.db, SSH host -> local    the product with pg_dump on an SSH host (paramiko)

with output sizes and the product's peak memory (its own VmHWM, and the largest process of
its tree). Then the codec measurement behind the default (zstd levels on the same
uncompressed dump, against pg_dump's zlib), and a scale check: the database grown to twice
its size, the product's peak memory again.

    python bench/backup.py [--size-gb 1] [--rounds 3] [--no-scale-check] [--no-ssh]
                           [--levels 1,3,6]

The SSH host is an sshd on a loopback address of this machine, so its encryption shares the
2 cores with everything else: the pair compares the product's SSH client with OpenSSH's.

Targets (issue 4): local <= 0.40x `pg_dump -Fc` and <= 1.10x the raw zstd pipe; output no
larger than `pg_dump -Fc`'s; peak memory <= 150 MB, and the same at 1x and 2x the size.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import zstandard  # noqa: E402

from backups.archive.codecs import ZSTD_JOB_SIZE  # noqa: E402
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
    empty_bucket,
    libpq_env,
    moto_server,
    s3_client,
)
from tests.harness import Cluster, Service, SshFleet, start_fleet  # noqa: E402
from tests.inventories import fleet_vars, write_inventory  # noqa: E402

DATABASE = "shop"
BUCKET = "bench-backups"
GIB = 1024**3
MIB = 1024**2
TARGET_VS_PG_DUMP = 0.40
TARGET_VS_ZSTD_PIPE = 1.10
TARGET_RSS_MB = 150
TARGET_RSS_GROWTH = 1.10  # "the same" at 2x the size: within 10 %

PG_DUMP_FC = "pg_dump -Fc > file"
PG_DUMP_Z0 = "pg_dump -Fc -Z0 > file"
ZSTD_PIPE = "pg_dump -Fc -Z0 | zstd -3 -T0 > file"
PRODUCT_LOCAL = "maint backup.db -> local dir"
PRODUCT_S3 = "maint backup.db -> S3 (moto)"
SSH_PIPE = "ssh host pg_dump -Z0 | zstd -3 -T0"
PRODUCT_SSH = "maint backup.db, SSH host -> local"
PRODUCT_SSH_S3 = "maint backup.db, SSH host -> S3"
ZSTD_CLI = "zstd -3 -T0 -q -c"


class Setup:
    """The services, inventories and scratch paths of one benchmark run."""

    def __init__(
        self, cluster: Cluster, moto: Service, workdir: Path, fleet: SshFleet | None = None
    ) -> None:
        self.cluster, self.moto, self.workdir, self.fleet = cluster, moto, workdir, fleet
        self.s3 = s3_client(moto)
        self.s3.create_bucket(Bucket=BUCKET)
        self.store_dir = workdir / "store"
        self.maint = venv_command("maint")

    def dump_argv(self, *extra: str) -> list[str]:
        dsn = self.cluster.dsn(DATABASE, with_password=False)
        return [str(PG_BIN / "pg_dump"), "--format=custom", *extra, "--no-password", "-d", dsn]

    def dump_to(self, target: str) -> None:
        """An untimed `pg_dump -Fc -Z0 > TARGET` (warm-up, codec sweep)."""
        dump = shlex.join(self.dump_argv("--compress=0"))
        run = timed(
            ["bash", "-c", f"{dump} > {shlex.quote(target)}"],
            env=libpq_env(self.cluster),
            cwd=self.workdir,
        )
        if run.returncode != 0:
            raise RuntimeError(f"pg_dump > {target} failed: {run.stderr[-2000:]}")

    def raw(self, name: str, pipeline: str) -> Contender:
        """A shell pipeline writing {out}; its size is recorded and the file removed."""
        output = self.workdir / "raw.out"

        def measure() -> Sample:
            script = f"set -o pipefail; {pipeline.format(out=shlex.quote(str(output)))}"
            run = timed(["bash", "-c", script], env=libpq_env(self.cluster), cwd=self.workdir)
            if run.returncode != 0 or not output.exists():
                raise RuntimeError(f"{name} failed ({run.returncode}): {run.stderr[-2000:]}")
            size = output.stat().st_size
            output.unlink()
            return Sample(run, {"size": size})

        return Contender(name, measure)

    def product(
        self, name: str, slug: str, store: dict[str, Any], fleet: SshFleet | None = None
    ) -> Contender:
        """maint backup.db of the database into STORE, from this machine or FLEET's first host."""
        connection = fleet.hosts[0].inventory_vars() if fleet else {"ansible_connection": "local"}
        host = {
            **connection,
            "postgres": {"dsn": self.cluster.dsn(), "databases": [DATABASE]},
            "backup": store,
        }
        inventory = write_inventory(
            self.workdir / f"{slug}.yaml",
            {"db1": host},
            all_vars=fleet_vars(fleet) if fleet else None,
        )
        inventory.chmod(0o600)
        argv = [self.maint, "backup.db", "-i", str(inventory), "--json"]

        def measure() -> Sample:
            run = timed(argv, env=S3_ENV, cwd=self.workdir)
            try:
                report = json.loads(run.stdout)
                [result] = report["results"]
                [outcome] = result["details"]["databases"]
            except (ValueError, KeyError) as exc:
                raise RuntimeError(f"{name}: no report ({exc}): {run.stderr[-2000:]}") from None
            if run.returncode != 0 or outcome["status"] != "ok":
                raise RuntimeError(f"{name} failed: {result.get('error')}: {run.stderr[-2000:]}")
            self._clean_stores()
            return Sample(
                run,
                {"size": outcome["size"], "raw_size": outcome["raw_size"],
                 "dump_s": outcome["duration_s"]},
            )  # fmt: skip

        return Contender(name, measure)

    def _clean_stores(self) -> None:
        shutil.rmtree(self.store_dir, ignore_errors=True)
        empty_bucket(self.s3, BUCKET)

    def pipe(self, name: str, *, compress: bool, codec: str = "") -> Contender:
        """pg_dump -Fc (zlib, or -Z0 when not COMPRESS), optionally piped through CODEC."""
        dump = shlex.join(self.dump_argv() if compress else self.dump_argv("--compress=0"))
        return self.raw(name, f"{dump} | {codec} > {{out}}" if codec else f"{dump} > {{out}}")

    def ssh_pipe(self, fleet: SshFleet) -> Contender:
        """OpenSSH runs pg_dump -Z0 on the host; zstd compresses here, as the product does.
        The password travels as PGPASSWORD in the SSH session's environment (sshd accepts PG*)."""
        dump = shlex.join(self.dump_argv("--compress=0"))
        ssh = fleet.ssh_argv(fleet.hosts[0], dump)
        ssh[1:1] = ["-o", "SendEnv=PGPASSWORD"]
        return self.raw(SSH_PIPE, f"{shlex.join(ssh)} | {ZSTD_CLI} > {{out}}")

    def contenders(self) -> list[Contender]:
        contenders = [
            self.pipe(PG_DUMP_FC, compress=True),
            self.pipe(PG_DUMP_Z0, compress=False),
            self.pipe(ZSTD_PIPE, compress=False, codec=ZSTD_CLI),
            self.local_product(),
            self.s3_product(),
        ]
        if self.fleet is not None:
            store = {"store": str(self.store_dir)}
            contenders += [
                self.ssh_pipe(self.fleet),
                self.product(PRODUCT_SSH, "ssh", store, self.fleet),
            ]
        return contenders

    def local_product(self) -> Contender:
        return self.product(PRODUCT_LOCAL, "local", {"store": str(self.store_dir)})

    def s3_product(self, name: str = PRODUCT_S3, fleet: SshFleet | None = None) -> Contender:
        store = {"store": f"s3://{BUCKET}/nightly", "endpoint_url": self.moto.url}
        return self.product(name, "ssh-s3" if fleet else "s3", store, fleet)


def codec_sweep(setup: Setup, levels: list[int]) -> list[dict[str, Any]]:
    """zstd as the product runs it (zstandard, threads=-1, 2 MiB jobs) and single-threaded,
    at LEVELS, on one uncompressed dump: compression time alone, output size, compressor
    memory."""
    path = setup.workdir / "sweep.dump"
    setup.dump_to(str(path))
    raw_size = path.stat().st_size
    rows = []
    try:
        for level in levels:
            for threads in (-1, 0):
                row = _compress_file(path, level, threads) | {"raw_size": raw_size}
                rows.append(row)
                print(
                    f"codec sweep: zstd -{level} threads={threads} {row['seconds']:.1f}s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        path.unlink()
    return rows


def _compress_file(path: Path, level: int, threads: int) -> dict[str, Any]:
    counter = _Counter()
    if threads:  # the product's multi-threaded settings, job size included
        params = zstandard.ZstdCompressionParameters.from_level(
            level, threads=threads, job_size=ZSTD_JOB_SIZE
        )
        compressor = zstandard.ZstdCompressor(compression_params=params)
    else:
        compressor = zstandard.ZstdCompressor(level=level)
    writer = compressor.stream_writer(counter, closefd=False, write_return_read=True)
    started = time.perf_counter()
    with path.open("rb") as source:
        while chunk := source.read(MIB):
            writer.write(chunk)
    context = compressor.memory_size()  # with its worker buffers, before they are released
    writer.close()
    return {
        "level": level,
        "threads": threads,
        "seconds": time.perf_counter() - started,
        "size": counter.size,
        "context_mb": context / MIB,
    }


class _Counter:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def count_seconds(cluster: Cluster) -> float:
    """Time of the exact row counts the product takes beside pg_dump (one connection)."""
    started = time.perf_counter()
    row_counts(cluster, DATABASE)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0, help="database size (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument(
        "--scale-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="grow the database to 2x and measure the product's memory again (default: on)",
    )
    parser.add_argument(
        "--scale-rounds", type=int, default=1, help="rounds at 2x the size (default 1)"
    )
    parser.add_argument(
        "--ssh",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also back up from an SSH host on loopback, beside OpenSSH (default: on)",
    )
    parser.add_argument(
        "--levels", default="1,3,6", help="zstd levels of the codec sweep (default 1,3,6)"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",") if level]

    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="maint-bench-backup-"))
    figures: dict[str, Any] = {}
    try:
        with (
            sigterm_as_interrupt(),
            bench_cluster("backup") as cluster,
            moto_server() as moto,
            contextlib.ExitStack() as stack,
        ):
            fleet = start_fleet(1, workdir / "ssh") if args.ssh else None
            if fleet is not None:
                stack.callback(fleet.stop)
            started = time.monotonic()
            size = grow_database(cluster, DATABASE, int(args.size_gb * GIB))
            figures["load_s"] = time.monotonic() - started
            setup = Setup(cluster, moto, workdir, fleet)
            _warm_up(setup)
            contenders = setup.contenders()
            alternate(contenders, args.rounds)
            figures["count_s"] = count_seconds(cluster)
            figures["startup_rss_mb"] = timed([setup.maint, "--version"], cwd=workdir).peak_rss_mb
            sweep = codec_sweep(setup, levels)
            scale = None
            if args.scale_check:
                grown = grow_database(cluster, DATABASE, 2 * size)
                _warm_up(setup)
                at_scale = [
                    setup.local_product(),
                    setup.s3_product(),
                    setup.pipe(ZSTD_PIPE, compress=False, codec=ZSTD_CLI),
                ]
                if fleet is not None:  # the most memory: paramiko's window and S3's parts
                    at_scale.append(setup.s3_product(PRODUCT_SSH_S3, fleet))
                alternate(at_scale, args.scale_rounds, label="2x size: ")
                scale = (grown, at_scale)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(report(args, size, contenders, sweep, scale, figures, load_before)))
    return 0


def _warm_up(setup: Setup) -> None:
    """One untimed dump: the database into the page cache, every tool and path checked."""
    setup.dump_to("/dev/null")


def report(args, size, contenders, sweep, scale, figures, load_before) -> dict[str, Any]:
    """Print the tables and the verdicts; return the JSON figures."""
    by_name = {c.name: c for c in contenders}
    fc, z0, pipe = by_name[PG_DUMP_FC], by_name[PG_DUMP_Z0], by_name[ZSTD_PIPE]
    local, s3 = by_name[PRODUCT_LOCAL], by_name[PRODUCT_S3]
    ssh, ssh_pipe = by_name.get(PRODUCT_SSH), by_name.get(SSH_PIPE)
    raw_size = local.median("raw_size")
    fc_size = fc.median("size")
    print(
        f"\nbackup: database {DATABASE} {size / GIB:.2f} GiB (pg_database_size), "
        f"custom dump {raw_size / GIB:.2f} GiB uncompressed; {args.rounds} rounds "
        f"alternating, medians; whole processes"
    )
    _print_runs(contenders, fc, pipe, (local, s3, ssh))
    print(
        "CPU: user+system of the command and its children (not the server's); own RSS: VmHWM "
        "of the maint process; tree RSS: largest process waited for (pg_dump, zstd, bash); "
        f"`maint --version` alone: {figures['startup_rss_mb']:.0f} MiB"
    )
    print(
        f"maint's own dump time (snapshot to committed object, from its report): local "
        f"{local.median('dump_s'):.2f} s, S3 {s3.median('dump_s'):.2f} s; the rest of its wall "
        "time is start-up, preflight, catalog listing and manifest"
    )
    print(
        f"rows counted by the product beside pg_dump (same snapshot): "
        f"{figures['count_s']:.1f} s alone; local store fsyncs the file, raw tools do not"
    )
    print(load_note(load_before))

    local_peak, s3_peak = max(local.values("peak_rss_mb")), max(s3.values("peak_rss_mb"))
    ratios = {
        "ratio": local.median() / fc.median(),
        "ratio_zstd_pipe": local.median() / pipe.median(),
        "s3_ratio_zstd_pipe": s3.median() / pipe.median(),
        "size_ratio": local.median("size") / fc_size,
        # Best runs against best runs: the least disturbed by other work on the machine.
        "ratio_min": min(local.values("seconds")) / min(fc.values("seconds")),
        "ratio_zstd_pipe_min": min(local.values("seconds")) / min(pipe.values("seconds")),
        "cpu_ratio_zstd_pipe": local.median("cpu_s") / pipe.median("cpu_s"),
    }
    print("\ntargets (medians; best-of ratios and CPU as a check on the noise)")
    _target_line("local / pg_dump -Fc", ratios["ratio"], TARGET_VS_PG_DUMP)
    _target_line("  best / best", ratios["ratio_min"], TARGET_VS_PG_DUMP)
    _target_line("local / zstd pipe", ratios["ratio_zstd_pipe"], TARGET_VS_ZSTD_PIPE)
    _target_line("  best / best", ratios["ratio_zstd_pipe_min"], TARGET_VS_ZSTD_PIPE)
    _target_line("  CPU / CPU", ratios["cpu_ratio_zstd_pipe"], None)
    _target_line("S3 / zstd pipe", ratios["s3_ratio_zstd_pipe"], None)
    if ssh is not None and ssh_pipe is not None:
        ratios["ssh_ratio_ssh_pipe"] = ssh.median() / ssh_pipe.median()
        ratios["ssh_cpu_ratio_ssh_pipe"] = ssh.median("cpu_s") / ssh_pipe.median("cpu_s")
        _target_line("SSH host / ssh pipe", ratios["ssh_ratio_ssh_pipe"], None)
        _target_line("  CPU / CPU", ratios["ssh_cpu_ratio_ssh_pipe"], None)
    _target_line("output / pg_dump -Fc", ratios["size_ratio"], 1.0)
    _target_line("peak RSS MiB, local", local_peak, TARGET_RSS_MB)
    _target_line("peak RSS MiB, S3", s3_peak, TARGET_RSS_MB)

    compress_s = _print_codecs(sweep, fc, z0, raw_size)
    result: dict[str, Any] = {
        "bench": "backup",
        "rounds": args.rounds,
        "database_mb": round(size / MIB),
        "dump_raw_mb": round(raw_size / MIB),
        "product_s": round(local.median(), 2),
        "baseline": "pg_dump -Fc",
        "baseline_s": round(fc.median(), 2),
        **{name: round(value, 3) for name, value in ratios.items()},
        "zstd_pipe_s": round(pipe.median(), 2),
        "pg_dump_z0_s": round(z0.median(), 2),
        "product_s3_s": round(s3.median(), 2),
        "product_dump_s": round(local.median("dump_s"), 2),
        "cpu_s": {c.name: round(c.median("cpu_s"), 2) for c in contenders},
        "product_size_mb": round(local.median("size") / MIB, 1),
        "pg_dump_fc_size_mb": round(fc_size / MIB, 1),
        "zstd_pipe_size_mb": round(pipe.median("size") / MIB, 1),
        "product_peak_rss_mb": round(local.median("peak_rss_mb")),
        "product_s3_peak_rss_mb": round(s3.median("peak_rss_mb")),
        "product_peak_rss_mb_max": round(local_peak),
        "product_s3_peak_rss_mb_max": round(s3_peak),
        "count_s": round(figures["count_s"], 2),
        "startup_rss_mb": round(figures["startup_rss_mb"]),
        "load_s": round(figures["load_s"], 1),
        "codec": {
            "zlib_pg_dump_compress_s": round(compress_s, 2),
            **{_sweep_name(row, "s"): round(row["seconds"], 2) for row in sweep},
            **{_sweep_name(row, "size_ratio"): round(row["size"] / fc_size, 3) for row in sweep},
            **{_sweep_name(row, "context_mb"): round(row["context_mb"], 1) for row in sweep},
        },
        "load_avg": round(os.getloadavg()[0], 1),
    }
    if ssh is not None and ssh_pipe is not None:
        result["product_ssh_s"] = round(ssh.median(), 2)
        result["ssh_pipe_s"] = round(ssh_pipe.median(), 2)
        result["product_ssh_peak_rss_mb"] = round(max(ssh.values("peak_rss_mb")))
    targets = {
        "vs_pg_dump": ratios["ratio"] <= TARGET_VS_PG_DUMP,
        "vs_zstd_pipe": ratios["ratio_zstd_pipe"] <= TARGET_VS_ZSTD_PIPE,
        "size": ratios["size_ratio"] <= 1.0,
        "peak_rss_local": local_peak <= TARGET_RSS_MB,
        "peak_rss_s3": s3_peak <= TARGET_RSS_MB,
    }
    if scale is not None:
        result["scale"], targets["flat_rss"] = _report_scale(size, scale, local_peak, s3_peak)
        if "ssh_s3_peak_rss_mb" in result["scale"]:
            targets["peak_rss_ssh_s3"] = result["scale"]["ssh_s3_peak_rss_mb"] <= TARGET_RSS_MB
    result["targets_met"] = targets
    return result


def _print_runs(contenders, fc: Contender, pipe: Contender, products) -> None:
    fc_s, fc_size, pipe_s = fc.median(), fc.median("size"), pipe.median()
    rows = []
    for contender in contenders:
        seconds = contender.median()
        rss = contender.values("peak_rss_mb")
        rows.append([
            contender.name, seconds, min(contender.values("seconds")),
            max(contender.values("seconds")), contender.median("cpu_s"),
            contender.median("size") / MIB, contender.median("size") / fc_size,
            seconds / fc_s, seconds / pipe_s,
            f"{statistics.median(rss):.0f} / {max(rss):.0f}"
            if any(contender is product for product in products) else "-",
            f"{max(contender.values('tree_rss_mb')):.0f}",
        ])  # fmt: skip
    print_table(
        ["what", "median s", "min s", "max s", "CPU s", "out MiB", "size/-Fc", "t/-Fc",
         "t/zstd pipe", "own RSS MiB med/max", "tree RSS MiB"],
        rows,
    )  # fmt: skip


def _print_codecs(sweep, fc: Contender, z0: Contender, raw_size: float) -> float:
    """The codec measurement behind the default; returns zlib's cost inside pg_dump -Fc."""
    fc_size = fc.median("size")
    compress_s = fc.median() - z0.median()
    print(
        f"\ncodec: pg_dump's zlib costs {compress_s:.1f} s over -Z0 ({z0.median():.1f} s); "
        "zstd via zstandard on the same uncompressed dump, compression alone:"
    )
    rows = [
        ["zlib -6 (pg_dump -Fc, built in)", compress_s, raw_size / compress_s / MIB,
         fc_size / MIB, 1.0, None],
    ]  # fmt: skip
    for row in sweep:
        threads = "threads=-1, as the product" if row["threads"] else "single thread"
        rows.append([
            f"zstd -{row['level']} ({threads})", row["seconds"],
            row["raw_size"] / row["seconds"] / MIB, row["size"] / MIB, row["size"] / fc_size,
            row["context_mb"],
        ])  # fmt: skip
    print_table(["codec", "compress s", "MiB/s", "out MiB", "size/-Fc", "compressor MiB"], rows)
    print(
        f"  pg_dump -Z0 alone produces {raw_size / z0.median() / MIB:.0f} MiB/s: a codec "
        "slower than that is the bottleneck of the pipe"
    )
    return compress_s


def _sweep_name(row: dict[str, Any], figure: str) -> str:
    return f"zstd{row['level']}_{'mt' if row['threads'] else 'st'}_{figure}"


def _target_line(label: str, value: float, limit: float | None) -> None:
    goal = "no target" if limit is None else f"<= {limit}: {verdict(value, limit)}"
    shown = f"{value:.0f}" if value >= 100 else f"{value:.3f}"
    print(f"  {label:<26} = {shown}  ({goal})")


def _report_scale(size: int, scale, local_peak: float, s3_peak: float):
    """Print the 2x run; return its figures and whether peak memory stayed flat."""
    grown, contenders = scale
    print(f"\nscale check: database grown to {grown / GIB:.2f} GiB ({grown / size:.2f}x)")
    rows = []
    for contender in contenders:
        product = contender.name.startswith("maint")
        rows.append([
            contender.name, contender.median(), contender.median("cpu_s"),
            contender.median("size") / MIB,
            f"{max(contender.values('peak_rss_mb')):.0f}" if product else "-",
            f"{max(contender.values('tree_rss_mb')):.0f}",
        ])  # fmt: skip
    print_table(["what", "median s", "CPU s", "out MiB", "own RSS MiB", "tree RSS MiB"], rows)
    local, s3, pipe, *over_ssh = contenders
    figures = {"database_mb": round(grown / MIB)}
    for contender in over_ssh:
        peak = max(contender.values("peak_rss_mb"))
        _target_line("peak RSS MiB, SSH host->S3", peak, TARGET_RSS_MB)
        figures["ssh_s3_peak_rss_mb"] = round(peak)
    flat = True
    for name, contender, before in (("local", local, local_peak), ("s3", s3, s3_peak)):
        after = max(contender.values("peak_rss_mb"))
        growth = after / before
        flat = flat and growth <= TARGET_RSS_GROWTH
        _target_line(f"peak RSS 2x/1x, {name}", growth, TARGET_RSS_GROWTH)
        _target_line(f"peak RSS MiB at 2x, {name}", after, TARGET_RSS_MB)
        figures |= {f"{name}_peak_rss_mb": round(after), f"{name}_growth": round(growth, 3)}
    figures |= {
        "product_s": round(local.median(), 2),
        "product_s3_s": round(s3.median(), 2),
        "zstd_pipe_s": round(pipe.median(), 2),
        "ratio_zstd_pipe": round(local.median() / pipe.median(), 3),
    }
    return figures, flat


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted: clusters, servers and scratch files removed")
