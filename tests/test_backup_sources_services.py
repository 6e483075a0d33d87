"""`redis` and `mysql` backup sources against real servers: Debian's redis-server and
MariaDB, started by the harness, dumped while a writer is busy, drilled, and pruned."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from backups.archive.codecs import compressing_writer, decompressing_reader
from backups.archive.layout import parse_key
from backups.archive.manifest import Manifest
from backups.stores import open_store
from tests.harness import RedisServer, start_redis
from tests.harness.mariadb import MariaDB, start_mariadb
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

REDIS_PASSWORD_ENV = "TEST_CACHE_PASSWORD"
MYSQL_PASSWORD_ENV = "TEST_SHOP_PASSWORD"
ODD_TABLE = "odd `name`),("  # a backtick and the row separator in a table's name
# Values that look like a dump's own syntax: quotes, escapes, row separators, newlines.
TRICKY_VALUES = ["a),(b", "it's", "back\\slash\\", "line\nbreak", "semi;\n", "),(',(''"]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    server = start_mariadb()
    server.sql("CREATE DATABASE shop")
    server.sql(
        "CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, note text);"
        " CREATE TABLE order_lines (id int AUTO_INCREMENT PRIMARY KEY, order_id int, sku text);"
        " CREATE TABLE empty_table (id int);"
        " CREATE TABLE audit (id int);"
        # a trigger whose body holds an INSERT: routines are no data to count
        " CREATE TRIGGER audited AFTER INSERT ON orders FOR EACH ROW\n"
        "INSERT INTO `audit` VALUES (NEW.id);",
        "shop",
    )
    odd = "`" + ODD_TABLE.replace("`", "``") + "`"
    values = ", ".join("(" + _quoted(value) + ")" for value in TRICKY_VALUES)
    server.sql(f"CREATE TABLE {odd} (v text); INSERT INTO {odd} VALUES {values}", "shop")  # noqa: S608
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def passwords(monkeypatch, redis_server, mariadb) -> None:
    monkeypatch.setenv(REDIS_PASSWORD_ENV, redis_server.password)
    monkeypatch.setenv(MYSQL_PASSWORD_ENV, mariadb.password)


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def sources(redis_server: RedisServer, mariadb: MariaDB, in_urls: bool = False) -> list[dict]:
    """The two sources, their passwords named by password_env or, IN_URLS, written in them."""
    if in_urls:
        password = quote(mariadb.password, safe="")
        mysql_url = f"mysql://{mariadb.user}:{password}@{mariadb.host}:{mariadb.port}"
        return [
            {"name": "cache", "redis": redis_server.url_with_password()},
            {"name": "shop", "mysql": mysql_url, "databases": ["shop"]},
        ]
    return [
        {"name": "cache", "redis": redis_server.url(), "password_env": REDIS_PASSWORD_ENV},
        {
            "name": "shop",
            "mysql": mariadb.url(),
            "password_env": MYSQL_PASSWORD_ENV,
            "databases": ["shop"],
        },
    ]


def inventory(
    tmp_path: Path, redis_server, mariadb, connection=None, in_urls=False, **backup
) -> Path:
    host = {
        **(connection or {"ansible_connection": "local"}),
        "backup": {"store": str(tmp_path / "store"), **backup},
    }
    host["backup"]["sources"] = sources(redis_server, mariadb, in_urls)
    return write_inventory(tmp_path / "inv.yaml", {"app1": host})


def by_unit(report: dict) -> dict[str, dict]:
    return {unit["database"]: unit for unit in report["results"][0]["details"]["databases"]}


def drills(report: dict) -> dict[str, dict]:
    return {drill["database"]: drill for drill in report["results"][0]["details"]["drills"]}


class Writer:
    """Writes in a thread until stopped, each write an atomic pair, so a consistent snapshot
    always holds as many of one as of the other."""

    def __init__(self, write: Callable[[int], None]) -> None:
        self.write, self.done, self.count = write, threading.Event(), 0
        self.slowest_s = 0.0  # the longest a write took: how long writers were held up
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            self.write(self.count)
            self.slowest_s = max(self.slowest_s, time.monotonic() - started)
            self.count += 1

    def __enter__(self) -> Writer:
        self.thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.thread.join()


def rdb_keys(rdb: bytes, tmp_path: Path) -> int:
    """Keys in an RDB as redis-check-rdb reads them: the snapshot itself, counted by Redis."""
    path = tmp_path / "check.rdb"
    path.write_bytes(rdb)
    checked = subprocess.run(
        ["redis-check-rdb", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(re.search(r"(\d+) keys read", checked).group(1))


def manifest_key(key: str) -> str:
    parsed = parse_key(key)
    assert parsed is not None
    return parsed.manifest_key


def stored(store_dir: Path, key: str) -> tuple[bytes, Manifest]:
    """The dump at KEY decompressed, and its manifest."""
    store = open_store(str(store_dir))
    manifest = Manifest.from_json(store.get_bytes(manifest_key(key)), key)
    with store.open_read(key) as raw:
        reader = decompressing_reader(manifest.codec, raw)
        return b"".join(iter(lambda: reader.read(1 << 20), b"")), manifest


@pytest.mark.parametrize("diskless_delay", [5, 0], ids=["from-disk", "diskless"])
def test_redis_backup_counts_the_snapshot_while_a_writer_works(
    redis_server, mariadb, tmp_path, diskless_delay
):
    """Keys per logical database in the manifest are the snapshot's, written in pairs across
    db0 and db1 while the backup runs, whether the server sends its snapshot from its disk or
    streams it (diskless, no delay); the drill loads the RDB and finds the same counts, keys
    whose TTL passed since included."""
    redis_server.client().flushall()
    redis_server.client().config_set("repl-diskless-sync-delay", diskless_delay)
    server_copy = redis_server.workdir / "dump.rdb"  # what a transfer from disk leaves
    server_copy.unlink(missing_ok=True)
    short_lived = redis_server.client(2)
    for index in range(50):
        short_lived.set(f"short{index}", "gone soon", px=1500)
    expired = time.monotonic() + 1.6

    def pair(index: int) -> None:
        with redis_server.client().pipeline(transaction=True) as pipe:
            pipe.execute_command("SELECT", 0)
            pipe.set(f"order:{index}", "x" * 50)
            pipe.execute_command("SELECT", 1)
            pipe.set(f"line:{index}", "y" * 50)
            pipe.execute()

    path = inventory(tmp_path, redis_server, mariadb)
    with Writer(pair) as writer:
        code, report, stderr = maint("backup.db", "-i", str(path), "--source", "cache")
    assert code == 0, stderr
    assert server_copy.exists() == bool(diskless_delay)
    backup = by_unit(report)["cache"]
    counts = backup["counts"]
    assert counts["db0"] == counts["db1"] and 0 < counts["db0"] <= writer.count
    assert counts["db2"] == 50
    assert writer.slowest_s < 1.0  # writes were paused for the fork only, not the transfer
    rdb, manifest = stored(tmp_path / "store", backup["key"])
    assert manifest.source == {"kind": "redis", "name": "cache"} and manifest.counts == counts
    assert rdb_keys(rdb, tmp_path) == sum(counts.values())
    time.sleep(max(0.0, expired - time.monotonic()))  # a master would drop them on load
    assert short_lived.dbsize() == 0
    code, report, stderr = maint("restore.verify", "-i", str(path), "--target", "app1")
    assert code == 0, stderr
    drill = drills(report)["cache"]
    assert drill["ok"] and {row["name"]: row["restored"] for row in drill["counts"]} == counts


def test_mysql_backup_counts_the_snapshot_while_a_writer_works(redis_server, mariadb, tmp_path):
    """Rows per table in the manifest are the dump's transaction's: an order and its two lines
    are written in one transaction while the dump runs; the drill restores them into a
    scratch database, finds the same counts and drops it."""
    mariadb.sql("TRUNCATE orders; TRUNCATE order_lines; TRUNCATE audit", "shop")
    insert = (
        "START TRANSACTION; INSERT INTO orders (note) VALUES ('{0}');"
        " INSERT INTO order_lines (order_id, sku) VALUES (LAST_INSERT_ID(), 'a{0}'),"
        " (LAST_INSERT_ID(), 'b{0}'); COMMIT;"
    )
    batch = " ".join(insert.format(f"{index}") for index in range(20))
    path = inventory(tmp_path, redis_server, mariadb)
    with Writer(lambda index: mariadb.sql(batch, "shop")):
        code, report, stderr = maint("backup.db", "-i", str(path), "--source", "shop")
    assert code == 0, stderr
    counts = by_unit(report)["shop.shop"]["counts"]
    assert counts["order_lines"] == 2 * counts["orders"] and counts["orders"] > 0
    assert counts["audit"] == counts["orders"]
    assert counts["empty_table"] == 0 and counts[ODD_TABLE] == len(TRICKY_VALUES)
    code, report, stderr = maint("restore.verify", "-i", str(path), "--target", "app1")
    assert code == 0, stderr
    drill = drills(report)["shop.shop"]
    assert drill["ok"], drill
    assert {row["name"]: row["restored"] for row in drill["counts"]} == counts
    assert not [name for name in mariadb.databases() if name.startswith("maint_drill")]


def _rewrite(store_dir: Path, key: str, damage: Callable[[bytes], bytes]) -> None:
    """Replace the object at KEY with DAMAGE(its content), its manifest's checksum and size
    updated: the store's copy is intact, the dump inside is not."""
    content, manifest = stored(store_dir, key)
    buffer = io.BytesIO()
    with compressing_writer(manifest.codec, buffer) as writer:
        writer.write(damage(content))
    data = buffer.getvalue()
    store = open_store(str(store_dir))
    store.delete(manifest_key(key))
    store.delete(key)
    store.put_bytes(key, data)
    fixed = json.loads(manifest.to_json())
    fixed.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    store.put_bytes(manifest_key(key), json.dumps(fixed).encode())


def _flip_middle_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


def _drop_a_row(data: bytes) -> bytes:
    """The dump without one of order_lines' rows (MariaDB writes one row per line)."""
    return re.sub(rb"\n\([0-9]+,1,'a1'\),(?=\n)", b"", data, count=1)


@pytest.mark.parametrize(
    ("source", "unit", "damage", "reason"),
    [
        ("cache", "cache", _flip_middle_byte, "did not load the snapshot"),
        ("shop", "shop.shop", _drop_a_row, "order_lines: "),
    ],
)
def test_drill_fails_on_a_corrupted_dump(
    redis_server, mariadb, tmp_path, source, unit, damage, reason
):
    """A dump damaged inside a well-formed object (its checksum recomputed) fails its drill:
    Redis refuses an RDB whose CRC is wrong; a MariaDB dump missing a row restores, and the
    table's count says so."""
    redis_server.client().set("some", "value")
    mariadb.sql("INSERT INTO order_lines (order_id, sku) VALUES (1, 'a1'), (1, 'b1')", "shop")
    path = inventory(tmp_path, redis_server, mariadb)
    code, report, stderr = maint("backup.db", "-i", str(path), "--source", source)
    assert code == 0, stderr
    _rewrite(tmp_path / "store", by_unit(report)[unit]["key"], damage)
    code, report, _ = maint(
        "restore.verify", "-i", str(path), "--target", "app1", "--source", source
    )
    assert code == 1
    drill = drills(report)[unit]
    assert not drill["ok"] and any(reason in text for text in drill["reasons"]), drill["reasons"]
    assert not [name for name in mariadb.databases() if name.startswith("maint_drill")]


@pytest.mark.parametrize("in_urls", [False, True], ids=["password_env", "in-url"])
def test_passwords_stay_out_of_argv_and_output(redis_server, mariadb, tmp_path, in_urls):
    """While both sources are dumped, no process on this machine has a password in its
    command line, whether named by password_env or written in the URL; nor do the report, the
    logs and the manifests hold one."""
    secrets = [redis_server.password.encode(), mariadb.password.encode()]
    programs: set[str] = set()  # what ran while the backup did
    leaks: list[str] = []
    done = threading.Event()
    # A write lock on a table holds mariadb-dump until the watcher has seen it run.
    locker = subprocess.Popen(
        ["mariadb", "--no-defaults", f"--host={mariadb.host}", f"--port={mariadb.port}",
         f"--user={mariadb.user}", "shop"],
        stdin=subprocess.PIPE, env={**os.environ, "MYSQL_PWD": mariadb.password}, text=True,
    )  # fmt: skip
    assert locker.stdin is not None
    locker.stdin.write("LOCK TABLES orders WRITE; SELECT 1;\n")
    locker.stdin.flush()

    def watch() -> None:
        deadline = time.monotonic() + 30
        while not done.is_set():
            for pid in os.listdir("/proc"):
                try:
                    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                programs.add(os.path.basename(argv[0]).decode(errors="replace"))
                leaks.extend(repr(argv)[:200] for s in secrets for arg in argv if s in arg)
            if "mariadb-dump" in programs or time.monotonic() > deadline:
                release()
            done.wait(0.005)  # leave the CPU to the backup between sweeps

    def release() -> None:
        if locker.poll() is None and locker.stdin and not locker.stdin.closed:
            locker.stdin.write("UNLOCK TABLES;\n")
            locker.stdin.close()

    path = inventory(tmp_path, redis_server, mariadb, in_urls=in_urls)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        done_run = run_maint_cli(["backup.db", "-i", str(path), "--json"])
    finally:
        done.set()
        watcher.join()
        release()
        locker.wait(timeout=10)
    assert done_run.returncode == 0, done_run.stderr
    assert {"mariadb-dump", "python3"} <= programs  # the watcher saw the dumps run
    assert leaks == []
    written = [done_run.stdout, done_run.stderr]
    written += [p.read_text() for p in (tmp_path / "store").rglob("*.manifest.json")]
    assert not [text for text in written for s in secrets if s.decode() in text]


def test_sources_over_ssh_back_up_drill_and_prune(redis_server, mariadb, ssh_fleet, tmp_path):
    """On an SSH host the dump tools run there (the servers are its loopback's); two runs
    leave two backups of each kind, the drills pass, keep_last 1 prunes one of each."""
    node = ssh_fleet.hosts[0]
    redis_server.client().set("over", "ssh")
    path = write_inventory(
        tmp_path / "inv.yaml",
        {
            "node01": {
                **node.inventory_vars(),
                "backup": {
                    "store": str(tmp_path / "store"),
                    "retention": {"keep_last": 1},
                    "sources": sources(redis_server, mariadb),
                },
            }
        },
        all_vars=fleet_vars(ssh_fleet),
    )
    for _ in range(2):
        code, report, stderr = maint("backup.db", "-i", str(path))
        assert code == 0, stderr
    code, report, stderr = maint("restore.verify", "-i", str(path), "--target", "node01")
    assert code == 0, stderr
    assert sorted(drills(report)) == ["cache", "shop.shop"]
    assert all(drill["ok"] for drill in drills(report).values())
    code, report, stderr = maint("backup.prune", "-i", str(path))
    assert code == 0, stderr
    code, listing, stderr = maint("backup.list", "-i", str(path))
    assert code == 0, stderr
    rows = listing["results"][0]["details"]["rows"]
    assert sorted((row["database"], row["kind"]) for row in rows) == [
        ("cache", "redis"),
        ("shop.shop", "mysql"),
    ]


def test_restore_db_loads_a_backup_into_a_database_and_an_rdb_file(redis_server, mariadb, tmp_path):
    """restore.db of a mysql backup fills the database --database names, one that has tables
    only with --force; of a redis backup, it writes an RDB that Redis reads with the keys."""
    redis_server.client().flushall()
    redis_server.client(3).set("kept", "yes")
    path = inventory(tmp_path, redis_server, mariadb)
    code, report, stderr = maint("backup.db", "-i", str(path))
    assert code == 0, stderr
    counts = by_unit(report)["shop.shop"]["counts"]
    restore = ("restore.db", "-i", str(path), "--target", "app1", "--yes")
    shop = ("--backup", "app1/shop.shop/latest", "--database", "shop_restored")
    try:
        code, _, stderr = maint(*restore, *shop)
        assert code == 0, stderr
        assert {table: mariadb.count("shop_restored", table) for table in counts} == counts
        code, _, stderr = maint(*restore, *shop)
        assert code == 1 and "refusing to overwrite it without --force" in stderr
        code, _, stderr = maint(*restore, *shop, "--force")
        assert code == 0, stderr
    finally:
        mariadb.sql("DROP DATABASE IF EXISTS shop_restored")
    rdb = tmp_path / "restored.rdb"
    code, _, stderr = maint(*restore, "--backup", "app1/cache/latest", "--database", str(rdb))
    assert code == 0, stderr
    assert rdb_keys(rdb.read_bytes(), tmp_path) == 1
