"""Database maintenance: targeted VACUUM, ANALYZE and REINDEX, reports, sessions, purge."""

from .purge import PurgeOptions, purge_host
from .reindex import ReindexOptions, reindex_host
from .reports import ReportOptions, bloat_host, unused_indexes_host
from .sessions import SessionOptions, idle_connections_host, long_queries_host
from .settings import parse_flags, rule_from_flags, settings_for
from .vacuum import TableOptions, analyze_host, vacuum_host

__all__ = [
    "PurgeOptions",
    "ReindexOptions",
    "ReportOptions",
    "SessionOptions",
    "TableOptions",
    "analyze_host",
    "bloat_host",
    "idle_connections_host",
    "long_queries_host",
    "parse_flags",
    "purge_host",
    "reindex_host",
    "rule_from_flags",
    "settings_for",
    "unused_indexes_host",
    "vacuum_host",
]
