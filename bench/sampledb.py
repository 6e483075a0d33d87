"""A shop-like sample database of a requested size, compressible like real data.

pgbench's tables compress about 36x (blank-padded filler), which flatters every codec. These
rows mix what production tables hold: sequential ids and timestamps, foreign keys, small
enumerations, names and addresses from short word lists, JSON payloads, and random tokens
(md5 hex, uuids) that no codec can shrink below 4 bits a character. A dump of it compresses
about 3.5x with zlib or zstd. Each chunk is seeded, so a given size always gives the same rows.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from dataclasses import dataclass

from psycopg import sql

from tests.harness import Cluster

# Rows of each table per byte of database, from the heap plus index bytes measured per row
# (customers ~162 B, orders ~176 B, events ~285 B) and the share of the database each gets.
SHARES = {"customers": (0.15, 162), "orders": (0.25, 176), "events": (0.60, 285)}
CHUNK_ROWS = 250_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id bigint NOT NULL, email text, name text, country text,
    created_at timestamptz, last_seen timestamptz, api_token text);
CREATE TABLE IF NOT EXISTS orders (
    id bigint NOT NULL, customer_id bigint, placed_at timestamptz, status text,
    total numeric(12,2), items int, shipping_address text, payment_ref text);
CREATE TABLE IF NOT EXISTS events (
    id bigint NOT NULL, occurred_at timestamptz, customer_id bigint, kind text,
    amount numeric(10,2), session_id uuid, payload text);
"""

# %(first)s / %(last)s: the id range of the chunk; %(customers)s: customer ids to refer to.
INSERTS = {
    "customers": """
INSERT INTO customers
SELECT i, f || '.' || l || i || '@' || (ARRAY['example.com','mail.test','corp.example',
    'shop.test'])[1 + i %% 4],
  initcap(f) || ' ' || initcap(l),
  (ARRAY['DE','FR','US','GB','NL','SE','PL','ES','IT','JP'])[1 + (random()*9)::int],
  timestamptz '2019-01-01' + i * interval '13 min' + random() * interval '1 hour',
  timestamptz '2025-01-01' - random() * interval '400 days',
  md5(i::text || 'token')
FROM (SELECT i,
  (ARRAY['anna','ben','carla','david','emma','felix','greta','hugo','ines','jonas','kim',
    'lena','max','nora','omar','paula'])[1 + (random()*15)::int] AS f,
  (ARRAY['schmidt','martin','smith','jones','garcia','rossi','novak','berg','lopez',
    'mueller','dubois','kowalski','silva','tanaka'])[1 + (random()*13)::int] AS l
  FROM generate_series(%(first)s::bigint, %(last)s::bigint) i) AS s
""",
    "orders": """
INSERT INTO orders
SELECT i, 1 + (random() * (%(customers)s - 1))::bigint,
  timestamptz '2021-01-01' + i * interval '71 s' + random() * interval '1 min',
  (ARRAY['new','paid','shipped','delivered','cancelled','refunded'])[1 + (random()*5)::int],
  round((random()*900 + 5)::numeric, 2), 1 + (random()*9)::int,
  (1 + random()*200)::int || ' ' || (ARRAY['Main','Oak','Pine','Maple','Cedar','Elm','Lake',
    'Hill','Park','Station'])[1 + (random()*9)::int] || ' ' || (ARRAY['Street','Road',
    'Avenue','Lane','Way'])[1 + (random()*4)::int] || ', ' ||
    lpad((random()*99999)::int::text, 5, '0') || ' ' || (ARRAY['Berlin','Paris','London',
    'Madrid','Rome','Oslo','Lyon','Porto','Graz','Turin'])[1 + (random()*9)::int],
  'pi_' || substr(md5(random()::text), 1, 24)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) i
""",
    "events": """
INSERT INTO events
SELECT i, timestamptz '2024-01-01' + i * interval '37 ms' + random() * interval '1 s',
  1 + (random() * (%(customers)s - 1))::bigint,
  (ARRAY['view','click','cart','checkout','order','refund','login','logout',
    'search'])[1 + (random()*8)::int],
  round((random()*500)::numeric, 2), md5((i / 20)::text)::uuid,
  '{"path":"/' || (ARRAY['p','c','search','cart','account'])[1 + (random()*4)::int] || '/'
    || (random()*50000)::int || '","ref":"' || substr(md5(random()::text), 1, 12)
    || '","device":"' || (ARRAY['mobile','desktop','tablet'])[1 + (random()*2)::int]
    || '","utm_source":"' || (ARRAY['newsletter','google','direct','partner',
    'social'])[1 + (random()*4)::int] || '","ua":"Mozilla/5.0 (X11; Linux x86_64) Firefox/'
    || (100 + (random()*30)::int) || '.0","ms":' || (random()*900)::int || '}'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) i
""",
}

# Built after loading (much faster than maintaining them row by row), dropped before growing.
INDEXES = (
    "ALTER TABLE customers ADD CONSTRAINT customers_pkey PRIMARY KEY (id)",
    "ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id)",
    "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id)",
    "CREATE INDEX orders_customer_id ON orders (customer_id)",
    "CREATE INDEX events_customer_id ON events (customer_id)",
)
DROP_INDEXES = (
    "ALTER TABLE customers DROP CONSTRAINT IF EXISTS customers_pkey",
    "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_pkey",
    "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey",
    "DROP INDEX IF EXISTS orders_customer_id",
    "DROP INDEX IF EXISTS events_customer_id",
)


@dataclass(frozen=True)
class Chunk:
    table: str
    first: int
    last: int
    customers: int


def database_size(cluster: Cluster, database: str) -> int:
    return int(cluster.execute("SELECT pg_database_size(%s)", (database,))[0][0])


def row_counts(cluster: Cluster, database: str) -> dict[str, int]:
    """Exact rows per table, to check that a restore brought everything back."""
    with cluster.connect(database) as connection:
        return {
            table: int(
                connection.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()[0]
            )
            for table in SHARES
        }


def grow_database(cluster: Cluster, database: str, target_bytes: int, workers: int = 2) -> int:
    """Add rows to DATABASE (created if missing) until it holds at least TARGET_BYTES.

    Returns the final pg_database_size. Loads in parallel over WORKERS connections with the
    indexes dropped, then rebuilds them, runs VACUUM (FREEZE, ANALYZE) and a CHECKPOINT, so
    the first dump neither sets hint bits nor shares the machine with the load's aftermath.
    """
    exists = cluster.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    if not exists:
        cluster.create_database(database)
    cluster.execute(SCHEMA, dbname=database)
    size = database_size(cluster, database)
    while size < target_bytes:
        started = time.monotonic()
        _parallel(cluster, database, DROP_INDEXES, workers=1)
        chunks = _chunks(cluster, database, int((target_bytes - size) * 1.03) + 1)
        _parallel(cluster, database, chunks, workers)
        _parallel(cluster, database, INDEXES, workers)
        cluster.execute("VACUUM (FREEZE, ANALYZE)", dbname=database)
        cluster.execute("CHECKPOINT")  # not in the middle of the first timed run
        size = database_size(cluster, database)
        print(
            f"sample database {database}: {size / 2**20:.0f} MiB after "
            f"{time.monotonic() - started:.0f} s of loading",
            file=sys.stderr,
            flush=True,
        )
    return size


def _chunks(cluster: Cluster, database: str, missing_bytes: int) -> list[Chunk]:
    """Chunks of new rows worth about MISSING_BYTES, ids continuing after the existing ones."""
    with cluster.connect(database) as connection:
        last_ids = {
            table: int(
                connection.execute(
                    sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(sql.Identifier(table))
                ).fetchone()[0]
            )
            for table in SHARES
        }
    wanted = {
        table: max(1, int(missing_bytes * share / row_bytes))
        for table, (share, row_bytes) in SHARES.items()
    }
    customers = last_ids["customers"] + wanted["customers"]
    chunks = []
    for table, rows in wanted.items():
        start = last_ids[table] + 1
        end = last_ids[table] + rows
        for first in range(start, end + 1, CHUNK_ROWS):
            chunks.append(Chunk(table, first, min(first + CHUNK_ROWS - 1, end), customers))
    # Biggest rows first, so the two workers finish together.
    return sorted(chunks, key=lambda chunk: -SHARES[chunk.table][1])


def _parallel(cluster: Cluster, database: str, jobs, workers: int) -> None:
    """Run each job (an SQL string or a Chunk) on one of WORKERS connections."""
    pending: queue.SimpleQueue = queue.SimpleQueue()
    for job in jobs:
        pending.put(job)
    errors: list[BaseException] = []

    def work() -> None:
        with cluster.connect(database) as connection:
            while not errors:
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    _run_job(connection, job)
                except BaseException as exc:
                    errors.append(exc)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _run_job(connection, job) -> None:
    if isinstance(job, str):
        connection.execute(job)
        return
    # A seed per chunk: the same size always gives the same rows.
    connection.execute("SELECT setseed(%s)", ((job.first % 1_000_003) / 1_000_003,))
    connection.execute(
        INSERTS[job.table],
        {"first": job.first, "last": job.last, "customers": max(job.customers, 2)},
    )
