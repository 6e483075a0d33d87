"""Estimated bloat of tables and btree indexes: exact-ish with pgstattuple, else from statistics.

pgstattuple (when the extension is installed in the database) measures pages; without it the
expected size is worked out from row counts and pg_stats column widths, the way the
well-known bloat queries do, and compared with the real size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg

from . import catalog

PAGE_HEADER = 24
BTREE_SPECIAL = 16
INDEX_TUPLE_HEADER = 8
INDEX_NULL_BITMAP = 4
HEAP_TUPLE_HEADER = 23
LINE_POINTER = 4
MAXALIGN = 8
BTREE_DEFAULT_FILLFACTOR = 90
HEAP_DEFAULT_FILLFACTOR = 100


@dataclass(frozen=True)
class Estimate:
    """A relation's size and the part of it that holds no live data."""

    size: int
    wasted: int
    method: str

    @property
    def ratio(self) -> float:
        return self.wasted / self.size if self.size else 0.0

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "wasted": self.wasted,
            "ratio": round(self.ratio, 3),
            "method": self.method,
        }


def _align(size: float) -> float:
    return math.ceil(size / MAXALIGN) * MAXALIGN


def expected_index_bytes(widths: catalog.ColumnWidths, block: int) -> int | None:
    """Size a freshly built btree index over WIDTHS' rows would have; None if unknown."""
    if not widths.known or widths.estimated_rows < 0:
        return None
    header = INDEX_TUPLE_HEADER + (INDEX_NULL_BITMAP if widths.has_nulls else 0)
    tuple_bytes = LINE_POINTER + _align(header + widths.width)
    usable = (block - PAGE_HEADER - BTREE_SPECIAL) * (
        (widths.fillfactor or BTREE_DEFAULT_FILLFACTOR) / 100
    )
    leaf_pages = math.ceil(widths.estimated_rows * tuple_bytes / usable)
    # Inner pages hold one downlink per page below; the meta page and root come on top.
    inner_pages = math.ceil(leaf_pages * tuple_bytes / usable)
    return (leaf_pages + inner_pages + 2) * block


def expected_table_bytes(widths: catalog.ColumnWidths, block: int) -> int | None:
    """Size a freshly written heap holding WIDTHS' rows would have; None if unknown."""
    if not widths.known or widths.estimated_rows < 0:
        return None
    null_bitmap = math.ceil(widths.columns / 8) if widths.has_nulls else 0
    tuple_bytes = LINE_POINTER + _align(HEAP_TUPLE_HEADER + null_bitmap) + _align(widths.width)
    usable = (block - PAGE_HEADER) * ((widths.fillfactor or HEAP_DEFAULT_FILLFACTOR) / 100)
    rows_per_page = max(1, math.floor(usable / tuple_bytes))
    return math.ceil(widths.estimated_rows / rows_per_page) * block


def from_expected(size: int, expected: int | None) -> Estimate | None:
    """Waste as what the real SIZE has beyond the EXPECTED one (never below zero)."""
    if expected is None:
        return None
    return Estimate(size=size, wasted=max(0, size - expected), method="statistics")


def from_pgstatindex(figures: dict, block: int, fillfactor: int | None) -> Estimate:
    """Waste of a btree from pgstatindex: leaf space below the fillfactor, empty, deleted pages."""
    size = int(figures["index_size"])
    leaf_bytes = int(figures["leaf_pages"]) * block
    density = float(figures["avg_leaf_density"])
    if math.isnan(density):
        density = 0.0
    fill = (fillfactor or BTREE_DEFAULT_FILLFACTOR) / 100
    expected_leaf = leaf_bytes * min(1.0, density / 100 / fill)
    wasted = (leaf_bytes - expected_leaf) + (
        int(figures["empty_pages"]) + int(figures["deleted_pages"])
    ) * block
    return Estimate(size=size, wasted=max(0, round(wasted)), method="pgstattuple")


def from_pgstattuple_approx(figures: dict) -> Estimate:
    """Waste of a heap from pgstattuple_approx: free space plus dead tuples."""
    size = int(figures["table_len"])
    wasted = float(figures["approx_free_space"]) + float(figures["dead_tuple_len"])
    return Estimate(size=size, wasted=min(size, round(wasted)), method="pgstattuple")


class Estimator:
    """Estimates for one database, reading pg_stats once and each relation on demand."""

    def __init__(self, connection: psycopg.Connection) -> None:
        self.connection = connection
        self.block = catalog.block_size(connection)
        self.pgstattuple = catalog.extension_schema(connection, "pgstattuple")
        self._index_widths: dict[int, catalog.ColumnWidths] | None = None
        self._table_widths: dict[int, catalog.ColumnWidths] | None = None

    def forget(self) -> None:
        """Drop cached column statistics, e.g. after a rebuild gave an index a new oid."""
        self._index_widths = self._table_widths = None

    @property
    def method(self) -> str:
        return "pgstattuple" if self.pgstattuple else "statistics"

    def index(self, index: catalog.Index, size: int) -> Estimate | None:
        """Bloat of a btree INDEX of SIZE bytes; None when it cannot be estimated now."""
        if self.pgstattuple:
            figures = catalog.pgstatindex(self.connection, self.pgstattuple, index.oid)
            if figures is not None:
                return from_pgstatindex(figures, self.block, index.fillfactor)
        if self._index_widths is None:
            self._index_widths = catalog.index_widths(self.connection)
        widths = self._index_widths.get(index.oid)
        return from_expected(size, expected_index_bytes(widths, self.block) if widths else None)

    def table(self, oid: int, size: int) -> Estimate | None:
        """Bloat of the heap of table OID of SIZE bytes; None when it cannot be estimated now."""
        if self.pgstattuple:
            figures = catalog.pgstattuple_approx(self.connection, self.pgstattuple, oid)
            if figures is not None:
                return from_pgstattuple_approx(figures)
        if self._table_widths is None:
            self._table_widths = catalog.table_widths(self.connection)
        widths = self._table_widths.get(oid)
        return from_expected(size, expected_table_bytes(widths, self.block) if widths else None)
