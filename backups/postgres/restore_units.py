"""Splitting a drill's restore so that it can start before the whole backup has arrived.

pg_restore --jobs needs the complete archive file, so a drill used to wait for the download
before loading anything. But a custom-format archive is ordered: header and table of contents
first, then each table's data, one block after another at offsets the backup recorded. So the
restore is cut into pg_restore runs (units), each started as soon as what it reads is there:

- `pre`: the schema (pre-data), as soon as the table of contents is on the host;
- lanes: the largest tables' data, each streamed from its block's first byte as the block
  arrives, one pg_restore per lane (`jobs - 1` lanes, blocks of at least LANE_MIN_BYTES);
- each lane's `post`: the indexes and constraints that touch that table and no other,
  once its data is in;
- `rest`: every other table's data and everything that touches no lane table, with the job
  slots the lanes leave, in parts that run one after the other: the tables whose blocks lie
  before the first lane's block as soon as that block starts arriving (they are all there
  then), the next part once the next lane's block starts, the last once the whole file is
  on the host and checked. Each part reads the file (the table of contents, patched with the
  data offsets as soon as it has landed, lets pg_restore seek). (Streaming the rest through a
  pipe as well was measured slower where the restore is CPU-bound: three readers on two
  cores, and the lanes' blocks read once more.)
- `final`: what is left (a foreign key between a lane table and another, say), last.

An entry that needs a table's rows must run after that table's data: the dependency closure
of each entry says which tables it touches (an index depends on its table; a foreign key on
both tables through the referenced key; a materialized view on what it selects from), and an
entry whose dependencies sit in a unit that may still be running is moved to `final`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

from backups.archive.toc import (
    SECTION_PRE_DATA,
    Toc,
    TocEntry,
)

# Streaming a block costs one more pg_restore process and connection; below this a table
# loads in well under a second and waits for the file with the rest.
LANE_MIN_BYTES = 16 * 1024 * 1024
# Where an entry goes while planning: "pre", "rest", "final", or a lane's ("data" | "post",
# its data entry's id).
UnitKey = str | tuple[str, int]
# Entries that pg_restore reads into its settings at open, in every run.
HEADER_ENTRIES = {"ENCODING", "STDSTRINGS", "SEARCHPATH"}


@dataclass(frozen=True)
class Unit:
    """One pg_restore run: the TOC entries it restores (a use-list) with JOBS workers.

    A lane reads the archive as it arrives, from its data block's offset STREAM_FROM on; the
    others read the file, once it holds LANDED bytes when that is set.
    """

    label: str
    dump_ids: tuple[int, ...]
    jobs: int = 1
    stream_from: int | None = None
    landed: int = 0


@dataclass(frozen=True)
class Lane:
    """A streamed table: its data unit and the unit of what touches only that table."""

    data: Unit
    post: Unit | None


@dataclass(frozen=True)
class UnitPlan:
    """The units in the order they may start. `rest` runs part after part; a part without
    `landed` waits for the whole file, checked."""

    pre: Unit
    lanes: tuple[Lane, ...] = ()
    rest: tuple[Unit, ...] = ()
    final: Unit | None = None
    header_end: int = 0  # bytes of header and TOC

    def units(self) -> list[Unit]:
        lanes = [unit for lane in self.lanes for unit in (lane.data, lane.post) if unit]
        return [u for u in (self.pre, *lanes, *self.rest, self.final) if u is not None]


def block_sizes(toc: Toc, offsets: Mapping[int, int], rows: Mapping[str, int]) -> dict[int, int]:
    """Each data block's length from the gaps between offsets (blocks follow each other).

    The last block's end is not recorded, so its length is estimated from its table's rows
    at the bytes per row of the others (only the choice of lanes depends on it).
    """
    ordered = sorted((offset, dump_id) for dump_id, offset in offsets.items())
    sizes = {dump_id: following - offset for (offset, dump_id), (following, _) in pairwise(ordered)}
    if ordered:
        last = ordered[-1][1]
        names = {entry.dump_id: f"{entry.namespace}.{entry.tag}" for entry in toc.entries}
        known_rows = sum(rows.get(names.get(d, ""), 0) for d in sizes)
        per_row = sum(sizes.values()) / known_rows if known_rows else 0
        sizes[last] = int(rows.get(names.get(last, ""), 0) * per_row)
    return sizes


def plan_units(
    toc: Toc, offsets: Mapping[int, int], sizes: Mapping[int, int], jobs: int
) -> UnitPlan:
    """Cut TOC's entries into units for JOBS parallel workers (see the module docstring)."""
    entries = {entry.dump_id: entry for entry in toc.entries}
    closure = _closures(entries)
    table_of = _data_tables(toc, offsets)
    lanes = _choose_lanes(table_of, sizes, jobs)
    assignment = _assign(entries, closure, table_of, lanes)
    rest_jobs = max(1, jobs - len(lanes))

    def unit(label: str, key: UnitKey, unit_jobs: int = 1) -> Unit | None:
        ids = tuple(d for d in entries if assignment[d] == key)
        return Unit(label, ids, unit_jobs) if ids else None

    lane_plans = []
    for data_id in lanes:
        name = _name(entries[data_id])
        data = Unit(f"data of {name}", (data_id,), stream_from=offsets[data_id])
        lane_plans.append(Lane(data, unit(f"indexes of {name}", ("post", data_id))))
    pre = unit("schema", "pre") or Unit("schema", ())
    rest_ids = [d for d in entries if assignment[d] == "rest"]
    return UnitPlan(
        pre=Unit(pre.label, pre.dump_ids, landed=toc.end),
        lanes=tuple(lane_plans),
        rest=_rest_parts(entries, closure, rest_ids, table_of, offsets, lanes, rest_jobs),
        final=unit("what spans streamed tables", "final", jobs),
        header_end=toc.end,
    )


def _rest_parts(
    entries: Mapping[int, TocEntry],
    closure: Mapping[int, set[int]],
    rest_ids: list[int],
    table_of: Mapping[int, set[int]],
    offsets: Mapping[int, int],
    lanes: list[int],
    jobs: int,
) -> tuple[Unit, ...]:
    """The rest cut at the lanes' blocks: part k holds the tables whose blocks lie between
    lane k-1's block and lane k's (all there once lane k's block starts arriving), and what
    touches only them or earlier parts; anything else (a table without a recorded offset,
    large objects, an entry that touches no table) goes in the last part, after the whole
    file."""
    bounds = sorted(offsets[lane] for lane in lanes)
    part: dict[int, int] = {}
    for dump_id in rest_ids:
        if dump_id in table_of:
            part[dump_id] = bisect_right(bounds, offsets[dump_id])
    last = len(bounds)
    for dump_id in rest_ids:
        if dump_id not in part:
            tables = [
                part[d] for d, ids in table_of.items() if d in part and ids & closure[dump_id]
            ]
            part[dump_id] = max(tables) if tables else last
    moved = True
    while moved:  # an entry never runs in a part before one holding what it depends on
        moved = False
        for dump_id in rest_ids:
            need = max((part[d] for d in entries[dump_id].dependencies if d in part), default=0)
            if need > part[dump_id]:
                part[dump_id], moved = need, True
    used = sorted(set(part.values()))
    return tuple(
        Unit(
            "other tables" if len(used) == 1 else f"other tables ({n} of {len(used)})",
            tuple(d for d in rest_ids if part[d] == k),
            jobs,
            landed=bounds[k] if k < last else 0,
        )
        for n, k in enumerate(used, start=1)
    )


def _name(entry: TocEntry) -> str:
    return f"{entry.namespace}.{entry.tag}" if entry.namespace else entry.tag


def _data_tables(toc: Toc, offsets: Mapping[int, int]) -> dict[int, set[int]]:
    """TABLE DATA entries with a recorded offset -> the ids that stand for their table
    (the data entry and the TABLE entries it depends on)."""
    return {
        entry.dump_id: {entry.dump_id, *entry.dependencies}
        for entry in toc.entries
        if entry.desc == "TABLE DATA" and entry.dump_id in offsets
    }


def _choose_lanes(
    table_of: Mapping[int, set[int]], sizes: Mapping[int, int], jobs: int
) -> list[int]:
    """The largest data blocks worth streaming, one slot left for the rest of the restore."""
    big = [d for d in table_of if sizes.get(d, 0) >= LANE_MIN_BYTES]
    big.sort(key=lambda d: sizes[d], reverse=True)
    return big[: max(0, jobs - 1)]


def _assign(
    entries: Mapping[int, TocEntry],
    closure: Mapping[int, set[int]],
    table_of: Mapping[int, set[int]],
    lanes: list[int],
) -> dict[int, UnitKey]:
    """Each entry's unit: "pre", "rest", "final", or a lane's ("data" | "post", data id).

    Placed by what it touches first; then any entry with a dependency in a unit that may
    still be running when its own starts moves to `final`, until nothing moves.
    """
    assignment = {
        dump_id: _first_choice(entry, closure[dump_id], table_of, lanes)
        for dump_id, entry in entries.items()
    }
    moved = True
    while moved:
        moved = False
        for dump_id, entry in entries.items():
            allowed = _may_follow(assignment[dump_id])
            deps = [assignment[d] for d in entry.dependencies if d in assignment]
            if allowed is not None and any(dep not in allowed for dep in deps):
                assignment[dump_id] = "final"
                moved = True
    return assignment


def _first_choice(
    entry: TocEntry, closure: set[int], table_of: Mapping[int, set[int]], lanes: list[int]
) -> UnitKey:
    if entry.section == SECTION_PRE_DATA or entry.desc in HEADER_ENTRIES:
        return "pre"
    if entry.dump_id in lanes:
        return ("data", entry.dump_id)
    touched = {data for data, ids in table_of.items() if ids & closure}
    streamed = touched & set(lanes)
    if not streamed:
        return "rest"
    if touched == streamed and len(streamed) == 1:
        return ("post", streamed.pop())
    return "final"


def _may_follow(key: UnitKey) -> set[UnitKey] | None:
    """The units whose entries an entry of KEY may depend on (None: any, for `final`)."""
    if key == "final":
        return None
    if isinstance(key, str):
        return {"pre", key}
    kind, table = key
    return {"pre", ("data", table), ("post", table)} if kind == "post" else {"pre", key}


def _closures(entries: Mapping[int, TocEntry]) -> dict[int, set[int]]:
    """Each entry's dependencies, transitively, itself included."""
    closures: dict[int, set[int]] = {}
    for dump_id, entry in entries.items():
        result = {dump_id}
        stack = list(entry.dependencies)
        while stack:
            dep = stack.pop()
            if dep in result:
                continue
            result.add(dep)
            if dep in closures:
                result |= closures[dep]
            elif dep in entries:
                stack.extend(entries[dep].dependencies)
        closures[dump_id] = result
    return closures
