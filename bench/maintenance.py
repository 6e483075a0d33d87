"""Maintenance benchmark: `maint db.vacuum` + `maint db.reindex` vs the runbooks' blanket commands.

Starts a throwaway PostgreSQL cluster through tests.harness and generates one database of 50
equal tables (id primary key, an indexed md5 text column, a counter, a timestamp), 3 of them
churned (half the rows updated, a third deleted and re-inserted) before every timed run, the
other 47 clean. Then, alternating over several rounds (medians), each after a fresh churn:

  product   `maint db.vacuum -i INV --json` then `maint db.reindex -i INV --json`
            (two whole processes, Python start-up included)
  runbook   `VACUUM ANALYZE;` then `REINDEX DATABASE <db>;` over one psycopg connection

While each runs, a writer session updates one random row of a churned table (the hot tables,
as in production: that is why they bloat) in a loop and records how long each statement took;
its longest statement is the longest lock wait the maintenance caused, and the time spent in
statements slower than 50 ms is how long the application was held up. Autovacuum is off for
the generated tables so nothing else cleans them.

    python bench/maintenance.py [--scale 1.0] [--rounds 3] [--lock-timeout 5s]

Default scale is about 400 MB (50 000 rows a table). At that size the churned indexes are a
few MB, under db.reindex's default 10MB floor, so the inventory sets reindex_min_size: 1MB;
everything else is the product's defaults. Targets: product <= 0.3x the runbook's time, and
no writer statement waiting longer than lock_timeout during the product's run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from maintenance.settings.durations import parse_duration  # noqa: E402
from tests.harness import Cluster, start_cluster  # noqa: E402
from tests.inventories import write_inventory  # noqa: E402

DATABASE = "bench"
TABLES = 50
BLOATED = 3
ROWS = 50_000
REINDEX_MIN_SIZE = "1MB"
TARGET_RATIO = 0.3
STALL_S = 0.05
BASELINE = "VACUUM ANALYZE; REINDEX DATABASE"


def table_name(number: int) -> str:
    return f"t{number:02d}"


def bloated_tables() -> list[str]:
    return [table_name(number) for number in range(BLOATED)]


def generate(cluster: Cluster, scale: float) -> dict[str, int]:
    """Create the 50 tables and fill them; return the row count of each."""
    cluster.create_database(DATABASE)
    rows = {table_name(n): int(ROWS * scale) for n in range(TABLES)}
    with cluster.connect(DATABASE) as connection:
        for name, count in rows.items():
            table = sql.Identifier(name)
            connection.execute(
                sql.SQL(
                    "CREATE TABLE {} (id int PRIMARY KEY, payload text, n int DEFAULT 0,"
                    " created timestamptz) WITH (autovacuum_enabled = false)"
                ).format(table)
            )
            connection.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, md5(g::text), 0, now() - g * interval '1 second'"
                    " FROM generate_series(1, %s) g"
                ).format(table),
                (count,),
            )
            connection.execute(
                sql.SQL("CREATE INDEX {} ON {} (payload)").format(
                    sql.Identifier(f"{name}_payload"), table
                )
            )
    # A settled start: what weeks of autovacuum leave behind on the clean tables.
    cluster.execute("VACUUM ANALYZE", dbname=DATABASE)
    return rows


def churn(cluster: Cluster, rows: dict[str, int]) -> None:
    """Bloat the 3 large tables again: dead tuples in the heap, half-empty index pages."""
    with cluster.connect(DATABASE) as connection:
        for name in bloated_tables():
            table = sql.Identifier(name)
            connection.execute(
                sql.SQL("UPDATE {} SET payload = md5(payload) WHERE id % 2 = 0").format(table)
            )
            connection.execute(sql.SQL("DELETE FROM {} WHERE id % 3 = 0").format(table))
            connection.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, md5(random()::text), 0, now()"
                    " FROM generate_series(3, %s, 3) g"
                ).format(table),
                (rows[name],),
            )


@dataclass
class Writer:
    """A session writing one row at a time while maintenance runs; keeps each statement's time."""

    cluster: Cluster
    rows: dict[str, int]
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Writer:
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()

    def _write(self) -> None:
        chooser = random.Random(7)  # noqa: S311 (load pattern, not security)
        names = bloated_tables()
        with self.cluster.connect(DATABASE) as connection:
            connection.execute("SET application_name = 'bench writer'")
            while not self._stop.is_set():
                name = chooser.choice(names)
                started = time.perf_counter()
                connection.execute(
                    sql.SQL("UPDATE {} SET n = n + 1 WHERE id = %s").format(sql.Identifier(name)),
                    (chooser.randint(1, self.rows[name]),),
                )
                self.latencies.append(time.perf_counter() - started)
                time.sleep(0.005)

    @property
    def longest(self) -> float:
        return max(self.latencies, default=0.0)

    @property
    def stalled(self) -> float:
        """Seconds spent in statements slower than STALL_S: time the application was held up."""
        return sum(latency for latency in self.latencies if latency > STALL_S)


def maint_command() -> str:
    """The installed console script itself, not a version manager's shim in front of it."""
    script = Path(sys.executable).with_name("maint")
    return str(script) if script.exists() else "maint"


def run_product(inventory: Path) -> tuple[dict[str, int], float]:
    """db.vacuum then db.reindex as a user runs them.

    Return what each changed and the seconds spent on the host (process start-up excluded).
    """
    touched, work = {}, 0.0
    for task in ("db.vacuum", "db.reindex"):
        done = subprocess.run(
            [maint_command(), task, "-i", str(inventory), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{task} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        result = json.loads(done.stdout)["results"][0]
        touched[task] = sum(1 for row in result["details"]["rows"] if row["status"] == "done")
        work += result["duration_s"]
    return touched, work


def run_baseline(cluster: Cluster) -> None:
    """The runbooks' weekly step, exactly as written there."""
    with cluster.connect(DATABASE) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute(sql.SQL("REINDEX DATABASE {}").format(sql.Identifier(DATABASE)))


def database_mb(cluster: Cluster) -> float:
    size = cluster.execute("SELECT pg_database_size(%s)", (DATABASE,))[0][0]
    return size / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="data size factor (1 = ~400 MB)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each (medians)")
    parser.add_argument("--lock-timeout", default="5s", help="the product's lock_timeout")
    args = parser.parse_args()
    lock_timeout = parse_duration(args.lock_timeout).total_seconds()

    cluster = start_cluster(f"maint_bench_maintenance_{os.getpid()}")
    try:
        started = time.perf_counter()
        rows = generate(cluster, args.scale)
        print(
            f"generated {TABLES} tables ({BLOATED} churned), {database_mb(cluster):.0f} MB"
            f" in {time.perf_counter() - started:.0f}s",
            file=sys.stderr,
        )
        with tempfile.TemporaryDirectory() as workdir:
            inventory = write_inventory(
                Path(workdir) / "inventory.yaml",
                {
                    "db": {
                        "ansible_connection": "local",
                        "postgres": {
                            "dsn": cluster.dsn(DATABASE),
                            "databases": [DATABASE],
                            "maintenance": {
                                "lock_timeout": args.lock_timeout,
                                "reindex_min_size": REINDEX_MIN_SIZE,
                            },
                        },
                    }
                },
            )
            measure(cluster, rows, inventory, args.rounds, lock_timeout)
    finally:
        cluster.destroy()


def measure(
    cluster: Cluster, rows: dict[str, int], inventory: Path, rounds: int, lock_timeout: float
) -> None:
    times: dict[str, list[float]] = {"product": [], "runbook": []}
    waits: dict[str, list[float]] = {"product": [], "runbook": []}
    stalls: dict[str, list[float]] = {"product": [], "runbook": []}
    work: list[float] = []
    touched: dict[str, int] = {}
    size_mb = 0.0
    print(
        f"{'round':<6} {'contender':<9} {'wall s':>7} {'on host s':>9}"
        f" {'longest write s':>16} {'writes stalled s':>17}  changed"
    )
    for number in range(rounds):
        order = ["product", "runbook"] if number % 2 == 0 else ["runbook", "product"]
        for contender in order:
            churn(cluster, rows)
            size_mb = max(size_mb, database_mb(cluster))
            with Writer(cluster, rows) as writer:
                started = time.perf_counter()
                if contender == "product":
                    touched, on_host = run_product(inventory)
                    work.append(on_host)
                else:
                    run_baseline(cluster)
                elapsed = time.perf_counter() - started
            times[contender].append(elapsed)
            waits[contender].append(writer.longest)
            stalls[contender].append(writer.stalled)
            if contender == "product":
                changed = f"{touched['db.vacuum']} tables, {touched['db.reindex']} indexes"
                host_s = f"{on_host:.2f}"
            else:
                changed, host_s = "every table and index", f"{elapsed:.2f}"
            print(
                f"{number + 1:<6} {contender:<9} {elapsed:>7.2f} {host_s:>9}"
                f" {writer.longest:>16.3f} {writer.stalled:>17.3f}  {changed}"
            )
    product_s = statistics.median(times["product"])
    baseline_s = statistics.median(times["runbook"])
    ratio = product_s / baseline_s
    product_wait, baseline_wait = max(waits["product"]), max(waits["runbook"])
    print()
    print(
        f"median product {product_s:.2f}s ({statistics.median(work):.2f}s of it on the host, "
        f"the rest Python start-up), runbook {baseline_s:.2f}s: ratio {ratio:.2f}"
    )
    print(
        f"longest writer statement: product {product_wait:.3f}s (lock_timeout {lock_timeout:g}s),"
        f" runbook {baseline_wait:.3f}s"
    )
    print(
        f"targets: ratio <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'MISSED'}; "
        f"writer wait <= lock_timeout: {'met' if product_wait <= lock_timeout else 'MISSED'}"
    )
    print(
        json.dumps(
            {
                "bench": "maintenance",
                "rounds": rounds,
                "database_mb": round(size_mb),
                "tables": TABLES,
                "bloated_tables": BLOATED,
                "product_s": round(product_s, 2),
                "product_on_host_s": round(statistics.median(work), 2),
                "baseline": BASELINE,
                "baseline_s": round(baseline_s, 2),
                "ratio": round(ratio, 3),
                "product_longest_write_wait_s": round(product_wait, 3),
                "baseline_longest_write_wait_s": round(baseline_wait, 3),
                "product_writes_stalled_s": round(statistics.median(stalls["product"]), 3),
                "baseline_writes_stalled_s": round(statistics.median(stalls["runbook"]), 3),
                "lock_timeout_s": lock_timeout,
                "product_changed": touched,
            }
        )
    )


if __name__ == "__main__":
    main()
