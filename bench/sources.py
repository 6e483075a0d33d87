"""Redis and MariaDB source benchmark: `maint backup.db --source` against the raw tools.

Starts a redis-server and a MariaDB server through tests.harness, fills each with --size-mb
of data that compresses like real data (a random half, a repetitive half), and times as whole
processes, alternating over several rounds (medians):

  redis-cli --rdb - | zstd -3 -T0 > file      the raw RDB stream, compressed
  maint backup.db --source cache -> local     the product (replication protocol on the host's
                                              python3, zstd and sha256 in-process, keys counted)
  mariadb-dump --single-transaction | zstd -3 -T0 > file
  maint backup.db --source shop -> local      the product (mariadb-dump through the host's
                                              python3, rows counted on the way, zstd, sha256)

with output sizes and the product's peak memory (its own VmHWM, and the largest process of
the tree it waited for). redis-cli offers diskless sync; the server's
repl-diskless-sync-delay is set to 0 so it is not held back 5 s waiting for other replicas.
The product's replica does not offer it (the server forks at once and sends its dump file).

    python bench/sources.py [--size-mb 1024] [--rounds 3] [--only redis|mysql]

Targets (issue 17): each within 1.3x its raw pipe; peak memory flat (the same at any size:
compare two --size-mb runs).
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
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.measure import (  # noqa: E402
    Contender,
    Sample,
    alternate,
    load_note,
    pipeline,
    print_table,
    sigterm_as_interrupt,
    timed,
    venv_command,
    verdict,
)
from tests.harness import RedisServer, start_redis  # noqa: E402
from tests.harness.mariadb import MariaDB, start_mariadb  # noqa: E402
from tests.inventories import write_inventory  # noqa: E402

MIB = 1024**2
TARGET_RATIO = 1.3
ZSTD_CLI = "zstd -3 -T0 -q -c"
VALUE_BYTES = 1024  # per Redis key and per MariaDB row
BATCH = 2000
# About VALUE_BYTES a row: two random hashes' hex, a repetitive text.
INSERT_ROWS = (
    "INSERT INTO events SELECT seq, '2026-01-01' + INTERVAL seq SECOND,"
    " ELT(1 + seq % 4, 'login', 'logout', 'purchase', 'view'),"
    " CONCAT(SHA2(RAND(), 512), SHA2(RAND(), 512), SHA2(seq, 256),"
    " REPEAT(CONCAT('event ', seq, ' from the usual place; '), 12))"
    " FROM seq_{first}_to_{last}"
)
# Names of the environment variables holding the passwords, not passwords.
REDIS_PASSWORD_ENV = "BENCH_CACHE_PASSWORD"  # noqa: S105
MYSQL_PASSWORD_ENV = "BENCH_SHOP_PASSWORD"  # noqa: S105


def fill_redis(server: RedisServer, size: int) -> int:
    """SIZE bytes of values in db0 (strings) and db1 (hashes); return the number of keys."""
    keys = size // VALUE_BYTES
    client = server.client()
    for start in range(0, keys, BATCH):
        pipe = client.pipeline(transaction=False)
        for index in range(start, min(start + BATCH, keys)):
            if index % 4:
                pipe.set(f"session:{index}", _value(index))
            else:
                pipe.execute_command("SELECT", 1)
                pipe.hset(f"user:{index}", mapping={"profile": _value(index), "n": index})
                pipe.execute_command("SELECT", 0)
        pipe.execute()
    return keys


def _value(index: int) -> bytes:
    """About VALUE_BYTES: half random hex (incompressible-ish), half repetitive text."""
    random_half = os.urandom(VALUE_BYTES // 4).hex().encode()
    return (
        random_half + (b"user %d logged in from the usual place; " % index * 12)[: VALUE_BYTES // 2]
    )


def fill_mariadb(server: MariaDB, size: int) -> int:
    """A table of SIZE bytes of rows (MariaDB's sequence engine makes them); return rows."""
    rows = size // VALUE_BYTES
    server.sql("CREATE DATABASE IF NOT EXISTS shop")
    server.sql(
        "CREATE TABLE events (id bigint PRIMARY KEY, created datetime, kind varchar(20),"
        " payload text) ENGINE=InnoDB",
        "shop",
    )
    step = 100_000
    for start in range(0, rows, step):
        end = min(start + step, rows)
        server.sql(INSERT_ROWS.format(first=start + 1, last=end), "shop")
    return rows


class Setup:
    """The servers, inventories and scratch paths of one run."""

    def __init__(self, redis_server: RedisServer, mariadb: MariaDB, workdir: Path) -> None:
        self.redis, self.mariadb, self.workdir = redis_server, mariadb, workdir
        self.store_dir = workdir / "store"
        self.maint = venv_command("maint")
        self.env = {REDIS_PASSWORD_ENV: redis_server.password, MYSQL_PASSWORD_ENV: mariadb.password}
        host = {
            "ansible_connection": "local",
            "backup": {
                "store": str(self.store_dir),
                "sources": [
                    {
                        "name": "cache",
                        "redis": redis_server.url(),
                        "password_env": REDIS_PASSWORD_ENV,
                    },
                    {
                        "name": "shop",
                        "mysql": mariadb.url(),
                        "password_env": MYSQL_PASSWORD_ENV,
                        "databases": ["shop"],
                    },
                ],
            },
        }
        self.inventory = write_inventory(workdir / "inv.yaml", {"app1": host})

    def product(self, name: str, source: str) -> Contender:
        argv = [self.maint, "backup.db", "-i", str(self.inventory), "--source", source, "--json"]

        def measure() -> Sample:
            run = timed(argv, env=self.env, cwd=self.workdir)
            try:
                [result] = json.loads(run.stdout)["results"]
                outcomes = result["details"]["databases"]
            except (ValueError, KeyError) as exc:
                raise RuntimeError(f"{name}: no report ({exc}): {run.stderr[-2000:]}") from None
            if run.returncode != 0 or any(o["status"] != "ok" for o in outcomes):
                raise RuntimeError(f"{name} failed: {result.get('error')}: {run.stderr[-2000:]}")
            shutil.rmtree(self.store_dir, ignore_errors=True)
            return Sample(
                run,
                {
                    "size": sum(o["size"] for o in outcomes),
                    "raw_size": sum(o["raw_size"] for o in outcomes),
                    "counted": sum(sum(o["counts"].values()) for o in outcomes),
                },
            )

        return Contender(name, measure)

    def redis_pair(self) -> list[Contender]:
        rdb = f"redis-cli -h {self.redis.host} -p {self.redis.port} --rdb - 2>/dev/null"
        return [
            pipeline(
                "redis-cli --rdb - | zstd",
                f"{rdb} | {ZSTD_CLI} > {{out}}",
                {"REDISCLI_AUTH": self.redis.password},
                self.workdir,
            ),
            self.product("maint backup.db --source cache", "cache"),
        ]

    def mysql_pair(self) -> list[Contender]:
        dump = shlex.join(
            [
                "mariadb-dump",
                f"--host={self.mariadb.host}",
                f"--port={self.mariadb.port}",
                f"--user={self.mariadb.user}",
                "--single-transaction",
                "--routines",
                "--events",
                "--triggers",
                "shop",
            ]
        )
        return [
            pipeline(
                "mariadb-dump | zstd",
                f"{dump} | {ZSTD_CLI} > {{out}}",
                {"MYSQL_PWD": self.mariadb.password},
                self.workdir,
            ),
            self.product("maint backup.db --source shop", "shop"),
        ]


@contextmanager
def servers() -> Iterator[tuple[RedisServer, MariaDB]]:
    with ExitStack() as stack:
        redis_server = start_redis()
        stack.callback(redis_server.stop)
        mariadb = start_mariadb()
        stack.callback(mariadb.stop)
        with redis_server.client() as client:
            client.config_set("repl-diskless-sync-delay", 0)
        yield redis_server, mariadb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="data per server (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--only", choices=("redis", "mysql"), help="one kind only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="maint-bench-sources-"))
    results: dict[str, Any] = {}
    try:
        with sigterm_as_interrupt(), servers() as (redis_server, mariadb):
            setup = Setup(redis_server, mariadb, workdir)
            kinds = [args.only] if args.only else ["redis", "mysql"]
            for kind in kinds:
                started = time.monotonic()
                if kind == "redis":
                    items = fill_redis(redis_server, args.size_mb * MIB)
                    pair = setup.redis_pair()
                else:
                    items = fill_mariadb(mariadb, args.size_mb * MIB)
                    pair = setup.mysql_pair()
                load_s = time.monotonic() - started
                print(f"{kind}: {items} items loaded in {load_s:.0f}s", file=sys.stderr)
                pair[1].measure()  # warm-up: page cache, bytecode
                alternate(pair, args.rounds, label=f"{kind}: ")
                results[kind] = _figures(pair, items)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    _print(results, args.rounds, load_before)
    print(
        json.dumps({"bench": "sources", "rounds": args.rounds, "size_mb": args.size_mb, **results})
    )
    return 0


def _figures(pair: list[Contender], items: int) -> dict[str, Any]:
    baseline, product = pair
    return {
        "items": items,
        "counted": int(product.median("counted")),
        "baseline": baseline.name,
        "baseline_s": round(baseline.median(), 2),
        "product_s": round(product.median(), 2),
        "ratio": round(product.median() / baseline.median(), 2),
        "baseline_size": int(baseline.median("size")),
        "product_size": int(product.median("size")),
        "raw_size": int(product.median("raw_size")),
        "baseline_cpu_s": round(baseline.median("cpu_s"), 2),
        "product_cpu_s": round(product.median("cpu_s"), 2),
        "product_peak_rss_mb": round(max(product.values("peak_rss_mb")), 1),
        "product_tree_rss_mb": round(max(product.values("tree_rss_mb")), 1),
        "baseline_tree_rss_mb": round(max(baseline.values("tree_rss_mb")), 1),
    }


def _print(results: dict[str, Any], rounds: int, load_before: float) -> None:
    rows = []
    for figures in results.values():
        ratio = f"{figures['ratio']:.2f}x {verdict(figures['ratio'], TARGET_RATIO)}"
        rows.append(
            [
                figures["baseline"],
                figures["baseline_s"],
                figures["baseline_cpu_s"],
                figures["baseline_size"] / MIB,
                None,
                figures["baseline_tree_rss_mb"],
                None,
            ]
        )
        rows.append(
            [
                f"  product ({figures['counted']} counted)",
                figures["product_s"],
                figures["product_cpu_s"],
                figures["product_size"] / MIB,
                figures["product_peak_rss_mb"],
                figures["product_tree_rss_mb"],
                ratio,
            ]
        )
    print(f"median of {rounds} rounds; target: product <= {TARGET_RATIO}x its raw pipe")
    print("(cpu: user+system of the process tree, servers' own work left out)")
    headers = ["contender", "seconds", "cpu s", "MiB out", "own MB", "tree MB", "ratio"]
    print_table(headers, rows)
    print(load_note(load_before))


if __name__ == "__main__":
    sys.exit(main())
