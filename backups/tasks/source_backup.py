"""backup.db's part for `backup.sources`: each source's units dumped as their kind says, into
the same pipeline, layout and manifest (written last) as the PostgreSQL databases.

One unit failing does not stop the next; every outcome has the shape of a database's (its
`database` is the unit's name), with the source's `kind` and `source` beside.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from backups.archive import catalog
from backups.archive.codecs import suffix
from backups.archive.layout import source_key
from backups.archive.manifest import Manifest
from backups.archive.transfer import dump_into_stores, write_manifests
from backups.sources import Source, host_sources
from backups.stores import Store
from backups.stores.fanout import Copy
from maintenance import __version__
from maintenance.errors import ConfigError, HostUnreachable, MaintError
from maintenance.inventory import Host
from maintenance.runners import Runner
from maintenance.secrets import mask_text
from maintenance.settings.problems import closest

TASK = "backup.db"
log = structlog.get_logger()


def chosen_sources(host: Host, names: Sequence[str]) -> list[Source]:
    """HOST's sources named by --source (all of them when none is named).

    Raise ConfigError for a name that is none of HOST's sources, with a did-you-mean.
    """
    sources = host_sources(host)
    known = {source.name: source for source in sources}
    for name in names:
        if name not in known:
            guess = closest(name, known)
            hint = f"; did you mean {guess!r}?" if guess else ""
            said = ", ".join(sorted(known)) or "none"
            raise ConfigError(
                f"host {host.name!r}: --source {name!r} is not one of its backup.sources "
                f"({said}){hint}; --limit picks the hosts that have it"
            )
    return [known[name] for name in dict.fromkeys(names)] if names else sources


def plan_lines(host: Host, sources: Sequence[Source], where: str) -> list[str]:
    """What a dry run says for each unit of SOURCES."""
    return [
        f"{host.name}/{unit} ({source.kind}) -> {where}"
        for source in sources
        for unit in source.units()
    ]


def back_up_sources(
    host: Host,
    runner: Runner,
    stores: Sequence[Store],
    unreachable: Sequence[Copy],
    sources: Sequence[Source],
) -> list[dict[str, Any]]:
    """Back up every unit of SOURCES into STORES (the reachable ones; UNREACHABLE are reported
    failed for each unit, as for a database); one outcome per unit."""
    return [
        _back_up_unit(host, runner, stores, unreachable, source, unit)
        for source in sources
        for unit in source.units()
    ]


def _back_up_unit(
    host: Host,
    runner: Runner,
    stores: Sequence[Store],
    unreachable: Sequence[Copy],
    source: Source,
    unit: str,
) -> dict[str, Any]:
    bound = log.bind(task=TASK, host=host.name, source=source.name, kind=source.kind, unit=unit)
    named = {"database": unit, "kind": source.kind, "source": source.name}
    try:
        outcome, copies = _dump(host, runner, stores, source, unit)
    except HostUnreachable:
        raise
    except MaintError as exc:
        message = mask_text(str(exc))
        bound.error("backup failed", error=message)
        failed = [*(Copy(store, error=exc) for store in stores), *unreachable]
        return {**named, "status": "failed", "error": message,
                "stores": [copy.to_dict() for copy in failed]}  # fmt: skip
    copies = [*copies, *unreachable]
    outcome.update(named, stores=[copy.to_dict() for copy in copies])
    lost = [copy for copy in copies if not copy.ok]
    if lost:
        outcome["status"] = "failed"
        outcome["error"] = "; ".join(f"{c.store.url}: {mask_text(str(c.error))}" for c in lost)
        bound.error("copy failed", error=outcome["error"])
    bound.info("backup complete", key=outcome["key"], size=outcome["size"])
    return outcome


def _dump(
    host: Host, runner: Runner, stores: Sequence[Store], source: Source, unit: str
) -> tuple[dict[str, Any], list[Copy]]:
    settings = host.settings.backup
    started = datetime.now(UTC)
    key = catalog.free_key(
        stores, source_key(host.name, unit, started, source.extension(), suffix(settings.codec))
    )
    with source.dump(runner, unit) as dumping:
        stream, copies = dump_into_stores(
            runner, dumping.command, dumping.env, stores, key, settings.codec, settings.level
        )
        counts = dumping.counts()
    finished = datetime.now(UTC)
    manifest = Manifest(
        host=host.name, database=unit, key=key.key, started_at=started.isoformat(),
        finished_at=finished.isoformat(), size=stream.stored.size,
        sha256=stream.stored.sha256.hexdigest(), codec=settings.codec,
        server_version=dumping.server_version, pg_dump_version=dumping.tool_version,
        tool_version=__version__, kind="source",
        source={"kind": source.kind, "name": source.name}, counts=counts,
    )  # fmt: skip
    write_manifests(copies, key, manifest)
    if not any(copy.ok for copy in copies):
        raise MaintError("; ".join(f"{c.store.url}: {mask_text(str(c.error))}" for c in copies))
    return {
        "status": "ok", "key": key.key, "size": manifest.size, "raw_size": stream.raw_size,
        "sha256": manifest.sha256, "counts": counts,
        "duration_s": round((finished - started).total_seconds(), 3), "flags": [],
    }, copies  # fmt: skip
