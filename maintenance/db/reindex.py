"""db.reindex: rebuild only bloated btree indexes, CONCURRENTLY, and clear failed rebuilds.

The runbooks' `REINDEX DATABASE` blocks writes to every table in turn. Here each index's
bloat is estimated first and only those past the threshold are rebuilt with REINDEX INDEX
CONCURRENTLY, which lets writes go on. An interrupted concurrent rebuild leaves an invalid
`<index>_ccnew` (or `_ccold`) behind that slows every write; those are dropped before and
after the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from ..inventory import Host
from ..results import Result
from ..runners import Runner
from ..settings.postgres import MaintenanceSettings
from ..units import format_size
from . import catalog, statements
from .bloat import Estimate, Estimator
from .execution import Outcome, StatementRunner
from .outcome import DatabaseRun, host_result, qualified
from .server import each_database
from .settings import settings_for

log = structlog.get_logger()

BLOCKING_WARNING = (
    "a blocking REINDEX holds a SHARE lock on the table: writes to it wait until the index is "
    "rebuilt, and reads using the index wait too"
)
_LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")


@dataclass(frozen=True)
class ReindexOptions:
    """Flags of db.reindex."""

    databases: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    blocking: bool = False


def is_leftover(index: catalog.Index) -> bool:
    """An invalid index named as REINDEX CONCURRENTLY names its temporary copies."""
    return not index.valid and bool(_LEFTOVER.search(index.name))


def is_rebuildable(index: catalog.Index) -> bool:
    """A valid btree that REINDEX CONCURRENTLY can rebuild (not an exclusion constraint's)."""
    return index.method == "btree" and index.valid and not index.exclusion


def reindex_host(host: Host, runner: Runner, options: ReindexOptions) -> Result:
    """Drop leftovers of failed rebuilds, rebuild bloated indexes, drop new leftovers."""
    settings = settings_for(host, options.overrides)
    if options.blocking:
        log.warning("blocking reindex", host=host.name, warning=BLOCKING_WARNING)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        _drop_leftovers(executor, run, "before")
        _rebuild_bloated(executor, run, settings, blocking=options.blocking)
        if not options.dry_run:
            _drop_leftovers(executor, run, "after")

    runs = each_database(
        host,
        runner,
        "db.reindex",
        settings,
        dry_run=options.dry_run,
        requested=options.databases,
        work=work,
    )
    facts = {"warning": BLOCKING_WARNING} if options.blocking else {}
    return host_result(host, runs, noun="indexes", **facts)


def _drop_leftovers(executor: StatementRunner, run: DatabaseRun, when: str) -> None:
    connection = executor.connection
    every = catalog.indexes(connection)
    busy = catalog.tables_being_indexed(connection)
    other_invalid = [
        qualified(i.schema, i.name) for i in every if not i.valid and not is_leftover(i)
    ]
    run.facts["other_invalid_indexes"] = other_invalid
    for index in filter(is_leftover, every):
        name = qualified(index.schema, index.name)
        figures = {"schema": index.schema, "index": index.name, "table": index.table, "when": when}
        if index.table_oid in busy:
            note = "an index build is running on its table right now"
            run.add(name, "drop invalid", Outcome.SKIPPED, note, **figures)
            continue
        attempt = executor.run(statements.drop_index(index.schema, index.name))
        note = attempt.reason or f"invalid index left by an interrupted concurrent rebuild ({when})"
        run.add(name, "drop invalid", attempt.outcome, note, **figures)


def _rebuild_bloated(
    executor: StatementRunner, run: DatabaseRun, settings: MaintenanceSettings, *, blocking: bool
) -> None:
    connection = executor.connection
    estimator = Estimator(connection)
    candidates: list[tuple[catalog.Index, Estimate]] = []
    examined = unknown = 0
    for index in filter(is_rebuildable, catalog.indexes(connection)):
        size = catalog.relation_size(connection, index.oid)
        if size is None:
            run.add(
                qualified(index.schema, index.name),
                "reindex",
                Outcome.SKIPPED,
                executor.lock_timeout_reason(),
                schema=index.schema,
                index=index.name,
                table=index.table,
            )
            continue
        if size < settings.reindex_min_size:
            continue
        examined += 1
        estimate = estimator.index(index, size)
        if estimate is None:
            unknown += 1
        elif estimate.ratio >= settings.reindex_bloat_ratio:
            candidates.append((index, estimate))
    run.facts.update(bloat_method=estimator.method, examined=examined, not_estimated=unknown)
    for index, estimate in sorted(candidates, key=lambda pair: pair[1].wasted, reverse=True):
        _rebuild(executor, run, estimator, index, estimate, blocking=blocking)


def _rebuild(
    executor: StatementRunner,
    run: DatabaseRun,
    estimator: Estimator,
    index: catalog.Index,
    before: Estimate,
    *,
    blocking: bool,
) -> None:
    connection = executor.connection
    attempt = executor.run(
        statements.reindex_index(index.schema, index.name, concurrently=not blocking)
    )
    row = run.add(
        qualified(index.schema, index.name),
        "reindex" if not blocking else "reindex (blocking)",
        attempt.outcome,
        attempt.reason or f"{before.ratio:.0%} bloat, {format_size(before.wasted)} wasted",
        schema=index.schema,
        index=index.name,
        table=index.table,
        size_before=before.size,
        bloat_before=round(before.ratio, 3),
        method=before.method,
        duration_s=round(attempt.duration_s, 3),
    )
    if attempt.outcome != Outcome.DONE:
        return
    # A concurrent rebuild swaps in a new index under the old name, with a new oid.
    oid = catalog.index_oid(connection, index.schema, index.name)
    size = catalog.relation_size(connection, oid) if oid is not None else None
    after = None
    if oid is not None and size is not None:
        estimator.forget()
        after = estimator.index(replace(index, oid=oid), size)
    row.update(size_after=size, bloat_after=round(after.ratio, 3) if after else None)
    row["note"] = (
        f"size {format_size(before.size)} -> {format_size(size) if size is not None else '?'}, "
        f"bloat {before.ratio:.0%} -> {f'{after.ratio:.0%}' if after else '?'}, "
        f"{attempt.duration_s:.1f}s"
    )
