"""How a drill's restore is cut into pg_restore runs that can start before the file is whole.

Each case is a TOC shaped like pg_dump 15 writes it (ids, sections, dependencies); what is
checked is the promise the plan makes: nothing that needs a table's rows runs before they
are in, and the largest tables stream.
"""

from __future__ import annotations

from backups.archive.toc import (
    SECTION_DATA,
    SECTION_NONE,
    SECTION_POST_DATA,
    SECTION_PRE_DATA,
    Toc,
    TocEntry,
)
from backups.postgres.restore_units import LANE_MIN_BYTES, block_sizes, plan_units

PRE, DATA, POST, NONE = SECTION_PRE_DATA, SECTION_DATA, SECTION_POST_DATA, SECTION_NONE
MIB = 1024 * 1024


def toc(*entries: tuple[int, str, str, tuple[int, ...], int]) -> Toc:
    made = tuple(
        TocEntry(i, desc, tag, 0, 0, 0, "public", deps, section)
        for i, desc, tag, deps, section in entries
    )
    return Toc((1, 15, 0), 4, 8, made, 4096)


SHOP = toc(
    (1, "ENCODING", "ENCODING", (), NONE),
    (10, "TABLE", "customers", (), PRE),
    (11, "TABLE", "orders", (), PRE),
    (12, "TABLE", "events", (), PRE),
    (13, "SEQUENCE", "orders_id_seq", (11,), PRE),
    (14, "MATERIALIZED VIEW", "daily", (12,), PRE),
    (20, "TABLE DATA", "customers", (10,), DATA),
    (21, "TABLE DATA", "orders", (11,), DATA),
    (22, "TABLE DATA", "events", (12,), DATA),
    (23, "SEQUENCE SET", "orders_id_seq", (13,), DATA),
    (30, "CONSTRAINT", "customers_pkey", (10,), POST),
    (31, "CONSTRAINT", "orders_pkey", (11,), POST),
    (32, "INDEX", "events_order_id", (12,), POST),
    (33, "FK CONSTRAINT", "orders_customer_fkey", (11, 30), POST),
    (34, "FK CONSTRAINT", "events_order_fkey", (12, 31), POST),
    (35, "COMMENT", "TABLE events", (12,), NONE),
    (36, "MATERIALIZED VIEW DATA", "daily", (14,), POST),
    (37, "INDEX", "daily_day", (14, 36), POST),
    (38, "TRIGGER", "events_audit", (12, 34), POST),
)
OFFSETS = {20: 4096, 22: 4096 + 30 * MIB, 21: 4096 + 130 * MIB}
SIZES = {20: 30 * MIB, 22: 100 * MIB, 21: 50 * MIB}


def units_by_label(plan) -> dict[str, tuple[int, ...]]:
    return {unit.label: tuple(sorted(unit.dump_ids)) for unit in plan.units()}


def test_two_jobs_stream_the_largest_table_and_hold_back_what_needs_its_rows():
    plan = plan_units(SHOP, OFFSETS, SIZES, jobs=2)
    assert units_by_label(plan) == {
        "schema": (1, 10, 11, 12, 13, 14),
        "data of public.events": (22,),
        # its index, its comment, the materialized view over it and that view's index
        "indexes of public.events": (32, 35, 36, 37),
        # everything that touches no streamed table, with the one job left
        "other tables (1 of 2)": (20, 30),
        # orders' data, its sequence, key and its foreign key to customers
        "other tables (2 of 2)": (21, 23, 31, 33),
        # a foreign key from events to orders, and a trigger that depends on it
        "what spans streamed tables": (34, 38),
    }
    [lane] = plan.lanes
    assert lane.data.stream_from == OFFSETS[22]
    assert plan.pre.landed == plan.header_end == 4096
    # the rest, with the one job left, from the file: customers (before events' block) and
    # its key once events' block starts arriving, orders and the rest once the file is whole
    first, last = plan.rest
    assert (first.dump_ids, first.jobs, first.landed) == ((20, 30), 1, OFFSETS[22])
    assert (last.jobs, last.landed) == (1, 0)
    assert plan.final is not None and plan.final.jobs == 2


def test_more_jobs_stream_more_tables_and_a_key_between_two_goes_last():
    plan = plan_units(SHOP, OFFSETS, SIZES, jobs=3)
    labels = units_by_label(plan)
    assert [lane.data.dump_ids for lane in plan.lanes] == [(22,), (21,)]  # largest first
    # orders' key, and its sequence's value (the sequence belongs to orders)
    assert labels["indexes of public.orders"] == (23, 31)
    # orders -> customers: customers loads with the rest, orders streams: after both
    assert labels["what spans streamed tables"] == (33, 34, 38)
    # customers lies before both streamed blocks: it starts once events' block arrives
    assert labels["other tables"] == (20, 30)
    [rest] = plan.rest
    assert rest.landed == OFFSETS[22]


def test_small_tables_and_one_job_never_stream():
    small = {20: MIB, 22: LANE_MIN_BYTES - 1, 21: 2 * MIB}
    plan = plan_units(SHOP, OFFSETS, small, jobs=4)
    assert plan.lanes == ()
    # four jobs for the rest: pg_restore --jobs 4 of the whole file once it is there
    [rest] = plan.rest
    assert (rest.jobs, rest.stream_from, rest.landed) == (4, None, 0)
    plan = plan_units(SHOP, OFFSETS, SIZES, jobs=1)
    assert plan.lanes == () and plan.final is None
    [rest] = plan.rest
    assert (rest.jobs, rest.landed) == (1, 0)
    assert set(rest.dump_ids) == {e.dump_id for e in SHOP.entries} - set(plan.pre.dump_ids)


def test_every_entry_is_restored_exactly_once():
    for jobs in (1, 2, 3, 8):
        plan = plan_units(SHOP, OFFSETS, SIZES, jobs)
        restored = [dump_id for unit in plan.units() for dump_id in unit.dump_ids]
        assert sorted(restored) == sorted(e.dump_id for e in SHOP.entries), jobs


def test_block_sizes_come_from_the_gaps_and_the_last_from_its_rows():
    rows = {"public.customers": 1000, "public.events": 5000, "public.orders": 2000}
    sizes = block_sizes(SHOP, OFFSETS, rows)
    assert sizes[20] == 30 * MIB and sizes[22] == 100 * MIB
    # orders is last: 2000 rows at the others' 130 MiB / 6000 rows
    assert sizes[21] == int(2000 * 130 * MIB / 6000)


def test_a_rest_entry_never_runs_before_what_it_depends_on():
    """A publication touches no table, so it waits for the whole file; the entry adding
    customers to it touches only customers, whose part starts early, and must wait too."""
    with_publication = toc(
        *((e.dump_id, e.desc, e.tag, e.dependencies, e.section) for e in SHOP.entries),
        (40, "PUBLICATION", "changes", (), POST),
        (41, "PUBLICATION TABLE", "changes customers", (40, 10), POST),
    )
    plan = plan_units(with_publication, OFFSETS, SIZES, jobs=2)
    first, last = plan.rest
    assert first.dump_ids == (20, 30) and first.landed == OFFSETS[22]
    assert {40, 41} <= set(last.dump_ids) and last.landed == 0
