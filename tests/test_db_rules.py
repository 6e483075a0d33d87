"""Pure logic of db maintenance: statements, thresholds, bloat arithmetic, settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintenance.db import statements
from maintenance.db.bloat import (
    expected_index_bytes,
    expected_table_bytes,
    from_expected,
    from_pgstatindex,
)
from maintenance.db.catalog import ColumnWidths, Index, TableStats
from maintenance.db.outcome import qualified
from maintenance.db.reindex import is_leftover, is_rebuildable
from maintenance.db.settings import parse_flags, settings_for
from maintenance.db.vacuum import analyze_reason, vacuum_reason
from maintenance.errors import ConfigError
from maintenance.inventory import Host

EVIL = 'x"; DROP TABLE y; --'


def host(**maintenance) -> Host:
    return Host("db1", (), {"postgres": {"dsn": "postgresql://h/db", "maintenance": maintenance}})


def text(statement: statements.Statement) -> str:
    return statement.query.as_string(None)


def test_statements_quote_every_identifier() -> None:
    """Odd names become quoted identifiers, never SQL."""
    assert (
        text(statements.vacuum("public", EVIL))
        == 'VACUUM (ANALYZE) "public"."x""; DROP TABLE y; --"'
    )
    assert (
        text(statements.vacuum("s", "Order Items", full=True))
        == 'VACUUM (FULL, ANALYZE) "s"."Order Items"'
    )
    assert text(statements.analyze("s", "t", verbose=True)) == 'ANALYZE (VERBOSE) "s"."t"'
    assert (
        text(statements.reindex_index("s", EVIL))
        == 'REINDEX INDEX CONCURRENTLY "s"."x""; DROP TABLE y; --"'
    )
    assert text(statements.reindex_index("s", "i", concurrently=False)) == 'REINDEX INDEX "s"."i"'
    assert (
        text(statements.drop_index("s", "i_ccnew"))
        == 'DROP INDEX CONCURRENTLY IF EXISTS "s"."i_ccnew"'
    )


def test_purge_batch_binds_values_and_names_only_the_table() -> None:
    """The cutoff and batch size are parameters; ONLY keeps inheritance children out."""
    cutoff = datetime(2024, 1, 1, tzinfo=UTC)
    statement = statements.purge_batch("public", EVIL, "created at", cutoff, 500)
    assert statement.params == (cutoff, 500)
    assert text(statement) == (
        'DELETE FROM ONLY "public"."x""; DROP TABLE y; --" WHERE ctid = ANY(ARRAY('
        'SELECT ctid FROM ONLY "public"."x""; DROP TABLE y; --" WHERE "created at" < %s LIMIT %s))'
    )


def test_session_signal_matches_the_same_session_only() -> None:
    """Signals check pid, backend start, state and since; unknown actions are refused."""
    started = datetime(2024, 1, 1, tzinfo=UTC)
    statement = statements.signal_session(
        "terminate", 42, started, "query_start", started, "active"
    )
    assert text(statement).startswith('SELECT "pg_terminate_backend"(pid) FROM pg_stat_activity')
    assert statement.params == (42, started, started, "active")
    with pytest.raises(ValueError):
        statements.signal_session("kill -9", 42, started, "query_start", started, "active")


def test_timeouts_are_sent_in_milliseconds() -> None:
    statement = statements.set_timeouts(timedelta(seconds=1.5), timedelta(0))
    assert statement.params == ("1500ms", "0ms")


def table(dead: int, live: int, modified: int = 0, rows: float = -1, analyzed=None) -> TableStats:
    return TableStats(1, "public", "t", live, dead, modified, rows, analyzed)


@pytest.mark.parametrize(
    ("dead", "live", "chosen"),
    [
        (0, 0, False),
        (500, 500, False),  # half dead, but too few to matter
        (3_000, 10_000, True),  # 23% dead
        (3_000, 100_000, False),  # 3% dead
        (150_000, 10_000_000, True),  # 1.5% but many dead tuples
    ],
)
def test_vacuum_thresholds(dead: int, live: int, chosen: bool) -> None:
    """The ratio rule needs a minimum count; a large count alone is enough."""
    settings = settings_for(host())
    assert (vacuum_reason(table(dead, live), settings) is not None) is chosen


def test_analyze_thresholds() -> None:
    settings = settings_for(host())
    assert analyze_reason(table(0, 10_000, modified=5_000, rows=10_000), settings)
    assert analyze_reason(table(0, 10_000, modified=500, rows=10_000), settings) is None
    assert analyze_reason(table(0, 1e6, modified=5_000, rows=1e6), settings) is None
    never = analyze_reason(table(0, 5_000, modified=5_000), settings)
    assert never is not None and "never analyzed" in never


def index(name: str, valid: bool = True, method: str = "btree", exclusion: bool = False) -> Index:
    return Index(1, "public", name, "t", 2, method, valid, False, False, exclusion, None, 0)


def test_only_invalid_rebuild_copies_count_as_leftovers() -> None:
    """_ccnew/_ccold (numbered too) when invalid; a valid one or another invalid index is kept."""
    assert is_leftover(index("orders_pkey_ccnew", valid=False))
    assert is_leftover(index("orders_pkey_ccnew2", valid=False))
    assert is_leftover(index("orders_pkey_ccold", valid=False))
    assert not is_leftover(index("orders_pkey_ccnew", valid=True))
    assert not is_leftover(index("orders_created", valid=False))
    assert not is_leftover(index("ccnew_report", valid=False))
    assert is_rebuildable(index("a")) and not is_rebuildable(index("a", method="gin"))
    assert not is_rebuildable(index("a", exclusion=True))


def widths(rows: float, width: float = 8, known: bool = True) -> ColumnWidths:
    return ColumnWidths(1, known, width, False, 1, rows, None)


def test_fresh_index_estimate_is_close_to_a_real_build() -> None:
    """100 000 int8 keys: PostgreSQL builds a ~2.2 MiB btree; the estimate lands near it."""
    expected = expected_index_bytes(widths(100_000), 8192)
    assert expected is not None
    assert 2.0e6 < expected < 2.6e6
    assert expected_index_bytes(widths(100_000, known=False), 8192) is None
    assert expected_index_bytes(widths(-1), 8192) is None


def test_table_estimate_and_waste() -> None:
    expected = expected_table_bytes(ColumnWidths(1, True, 40, False, 3, 10_000, None), 8192)
    assert expected is not None
    estimate = from_expected(3 * expected, expected)
    assert estimate is not None and estimate.ratio == pytest.approx(2 / 3, rel=0.01)
    assert from_expected(expected // 2, expected).wasted == 0


def test_pgstatindex_waste() -> None:
    """Leaves half as full as the fillfactor, plus deleted pages, count as waste."""
    figures = {
        "index_size": 101 * 8192,
        "leaf_pages": 90,
        "empty_pages": 0,
        "deleted_pages": 10,
        "avg_leaf_density": 45.0,
    }
    estimate = from_pgstatindex(figures, 8192, None)
    assert estimate.wasted == 55 * 8192 and estimate.method == "pgstattuple"
    figures.update(avg_leaf_density=float("nan"), leaf_pages=0, deleted_pages=0)
    assert from_pgstatindex(figures, 8192, None).wasted == 0


@given(st.text(min_size=1, max_size=30))
def test_display_names_round_trip(name: str) -> None:
    """What the report shows is the name itself, or that name quoted with doubled quotes."""
    shown = qualified("public", name).removeprefix("public.")
    assert shown == name or shown == '"' + name.replace('"', '""') + '"'


def test_settings_layer_vars_and_overrides() -> None:
    settings = settings_for(
        host(lock_timeout="2s", reindex_min_size="1MB"), {"lock_timeout": timedelta(seconds=9)}
    )
    assert settings.lock_timeout == timedelta(seconds=9)
    assert settings.reindex_min_size == 1_000_000
    assert settings.statement_timeout == timedelta(hours=1)


def test_settings_report_every_problem_at_once() -> None:
    """Unknown keys, bad values and bad purge rules all appear in one error."""
    with pytest.raises(ConfigError) as caught:
        settings_for(
            host(
                vacuum_dead_ratio=1.5,
                lock_timout="1s",
                purge_batch=0,
                purge=[
                    {"table": "t", "column": "c"},
                    {"table": "t", "column": "c", "older_than": "0d"},
                ],
            )
        )
    message = str(caught.value)
    for expected in (
        "maintenance.vacuum_dead_ratio: expected at most 1",
        "maintenance.lock_timout: unknown key 'lock_timout'; did you mean 'lock_timeout'?",
        "maintenance.purge_batch: expected at least 1, got 0",
        "maintenance.purge[0].older_than: required key is missing",
        "maintenance.purge[1].older_than: must be longer than zero",
    ):
        assert f"host 'db1': postgres.{expected}" in message


def test_flags_are_read_as_the_same_keys_in_the_inventory() -> None:
    """A flag goes through its key's type; a flag contradicting the host's vars is refused."""
    flags = parse_flags(lock_timeout=("lock-timeout", "2min"), purge_batch=("batch", "500"))
    assert flags == {"lock_timeout": timedelta(minutes=2), "purge_batch": 500}
    with pytest.raises(ConfigError, match="--dead-ratio: expected at most 1"):
        parse_flags(vacuum_dead_ratio=("dead-ratio", "2"))
    with pytest.raises(ConfigError, match="--pause: a duration cannot be negative"):
        parse_flags(purge_pause=("pause", -1))
    with pytest.raises(ConfigError, match=r"lock_timeout .* must not exceed statement_timeout"):
        settings_for(host(statement_timeout="1min"), parse_flags(lock_timeout=("l", "5min")))
