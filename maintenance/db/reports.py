"""db.bloat and db.unused_indexes: read-only reports, largest first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..inventory import Host
from ..results import Result
from ..runners import Runner
from ..units import format_size
from . import catalog
from .bloat import Estimate, Estimator
from .execution import StatementRunner
from .outcome import REPORTED, DatabaseRun, host_result, qualified
from .server import each_database
from .settings import settings_for


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """Flags of db.bloat and db.unused_indexes (the CLI owns the --top default)."""

    databases: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    min_size: int = 0
    top: int


def bloat_host(host: Host, runner: Runner, options: ReportOptions) -> Result:
    """Estimated wasted bytes of HOST's tables and btree indexes, largest first."""
    settings = settings_for(host, options.overrides)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        connection = executor.connection
        estimator = Estimator(connection)
        relations: list[tuple[str, str, str, int, Callable[[int], Estimate | None]]] = [
            ("table", qualified(t.schema, t.name), t.name, t.oid, partial(estimator.table, t.oid))
            for t in catalog.table_stats(connection)
        ]
        relations += [
            ("index", qualified(i.schema, i.name), i.table, i.oid, partial(estimator.index, i))
            for i in catalog.indexes(connection)
            if i.method == "btree" and i.valid
        ]
        found: list[tuple[str, str, str, Estimate]] = []
        not_estimated: list[str] = []
        for kind, name, table, oid, estimate_for in relations:
            size = catalog.relation_size(connection, oid)
            if size is None:
                not_estimated.append(f"{name}: {executor.lock_timeout_reason()}")
                continue
            if size < options.min_size:
                continue
            estimate = estimate_for(size)
            if estimate is None:
                not_estimated.append(f"{name}: no column statistics yet (run ANALYZE)")
                continue
            found.append((kind, name, table, estimate))
        found.sort(key=lambda item: item[3].wasted, reverse=True)
        for kind, name, table, estimate in found[: options.top]:
            run.add(
                name,
                f"{kind} bloat",
                REPORTED,
                f"{format_size(estimate.wasted)} of {format_size(estimate.size)} wasted"
                f" ({estimate.ratio:.0%}, {estimate.method})",
                kind=kind,
                table=table,
                **estimate.to_dict(),
            )
        run.facts.update(
            bloat_method=estimator.method,
            relations=len(found),
            wasted=sum(item[3].wasted for item in found),
            not_estimated=not_estimated,
        )

    runs = each_database(
        host, runner, "db.bloat", settings, dry_run=False, requested=options.databases, work=work
    )
    wasted = sum(run.facts.get("wasted", 0) for run in runs)
    relations = sum(run.facts.get("relations", 0) for run in runs)
    summary = f"{format_size(wasted)} wasted over {relations} relations {_in_databases(runs)}"
    return host_result(host, runs, noun="relations", summary=summary)


def unused_indexes_host(host: Host, runner: Runner, options: ReportOptions) -> Result:
    """Indexes never scanned since the statistics reset, except those enforcing constraints."""
    settings = settings_for(host, options.overrides)

    def work(executor: StatementRunner, run: DatabaseRun) -> None:
        connection = executor.connection
        reset = catalog.stats_reset(connection)
        since = f"since {reset:%Y-%m-%d %H:%M} UTC" if reset else "since statistics began"
        unused = []
        for index in catalog.indexes(connection):
            if index.scans != 0 or index.unique or index.backs_constraint or not index.valid:
                continue
            size = catalog.relation_size(connection, index.oid)
            if size is None or size >= options.min_size:
                unused.append((index, size))
        unused.sort(key=lambda pair: pair[1] or 0, reverse=True)
        for index, size in unused[: options.top]:
            run.add(
                qualified(index.schema, index.name),
                "unused index",
                REPORTED,
                f"0 scans {since}, {format_size(size) if size is not None else 'size unknown'}",
                schema=index.schema,
                index=index.name,
                table=index.table,
                size=size,
                scans=0,
            )
        run.facts.update(
            stats_reset=reset, unused=len(unused), wasted=sum(s or 0 for _, s in unused)
        )

    runs = each_database(
        host,
        runner,
        "db.unused_indexes",
        settings,
        dry_run=False,
        requested=options.databases,
        work=work,
    )
    count = sum(run.facts.get("unused", 0) for run in runs)
    size = sum(run.facts.get("wasted", 0) for run in runs)
    summary = f"{count} unused indexes, {format_size(size)}, {_in_databases(runs)}"
    return host_result(host, runs, noun="indexes", summary=summary)


def _in_databases(runs: list[DatabaseRun]) -> str:
    return f"in {len(runs)} database{'s' if len(runs) != 1 else ''}"
