"""Database maintenance: targeted VACUUM, ANALYZE and REINDEX, reports, sessions, purge."""

from .purge import PurgeOptions, purge_host
from .reindex import ReindexOptions, reindex_host
from .reports import ReportOptions, bloat_host, unused_indexes_host
from .sessions import SessionOptions, idle_connections_host, long_queries_host
from .settings import PurgeRule, Settings, parse_setting, purge_rule, settings_for
from .vacuum import TableOptions, analyze_host, vacuum_host

__all__ = [
    "PurgeOptions",
    "PurgeRule",
    "ReindexOptions",
    "ReportOptions",
    "SessionOptions",
    "Settings",
    "TableOptions",
    "analyze_host",
    "bloat_host",
    "idle_connections_host",
    "long_queries_host",
    "parse_setting",
    "purge_host",
    "purge_rule",
    "reindex_host",
    "settings_for",
    "unused_indexes_host",
    "vacuum_host",
]
