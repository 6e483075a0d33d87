"""backup.prune: restic-style retention per host and database, over complete backups only.

Deletion order makes every step safe to interrupt: the manifest goes first (the backup turns
incomplete and is no longer listed or restored), then the data object and its drill record.
Incomplete objects are removed only once older than a grace period, since a running backup
looks exactly like one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from backups.archive import catalog
from backups.archive.layout import GLOBALS, host_prefix
from backups.archive.leftovers import sweep_leftovers
from backups.stores import Store
from backups.stores.host import open_host_stores
from backups.tasks.retention import Decision, Policy, Snapshot, plan_retention, within_cutoff
from backups.tasks.source_backup import chosen_sources
from maintenance.errors import ConfigError
from maintenance.inventory import Host
from maintenance.results import Result, Status
from maintenance.settings.backup import EMPTY_POLICY, PARTIAL, RetentionSettings
from maintenance.settings.problems import problems_of

log = structlog.get_logger()


@dataclass(frozen=True)
class PruneOptions:
    dry_run: bool = False
    overrides: tuple[tuple[str, Any], ...] = ()  # keep rules given as flags
    sources: tuple[str, ...] = ()  # --source: only these sources' backups


def policy_for(host: Host, overrides: dict[str, Any]) -> Policy:
    """The host's `backup.retention` rules with flags on top, read by the same model.

    Raise ConfigError naming the flag for a bad flag value, and for a policy with no rule on.
    """
    rules = host.settings.backup.retention or RetentionSettings.model_construct()
    if overrides:
        try:
            flags = RetentionSettings.model_validate(overrides, context=PARTIAL)
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(
                    f"--{str(loc[0]).replace('_', '-')}: {words}" if loc else words
                    for loc, words in problems_of(exc, RetentionSettings)
                )
            ) from None
        rules = rules.model_copy(update={name: getattr(flags, name) for name in overrides})
    if rules.is_empty():
        given = " with the flags given" if overrides else ""
        raise ConfigError(f"host {host.name!r}: backup.retention{given}: {EMPTY_POLICY}")
    return Policy.from_settings(rules)


def cutoff_words(policy: Policy, cutoff: datetime) -> str:
    """'keep_within 1 year: keeps backups after 2025-12-02 21:00 UTC' (what a dry run says)."""
    assert policy.keep_within is not None
    when = cutoff.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f"keep_within {policy.keep_within.words()}: keeps backups after {when} UTC"


def prune_plan(host: Host, now: datetime) -> str:
    """What backup.db --prune would keep once a backup taken NOW is the newest (dry runs)."""
    policy = policy_for(host, {})
    counts = [(f.name, getattr(policy, f.name)) for f in fields(policy) if f.name != "keep_within"]
    rules = [f"{name} {count}" for name, count in counts if count]
    if policy.keep_within is not None:
        rules.append(cutoff_words(policy, within_cutoff(policy.keep_within, now)))
    return ", ".join(rules)


def _cutoff_details(policy: Policy, decision: Decision) -> dict[str, str] | None:
    if policy.keep_within is None or decision.cutoff is None:
        return None
    return {
        "age": policy.keep_within.words(),
        "cutoff": decision.cutoff.astimezone(UTC).isoformat(),
        "says": cutoff_words(policy, decision.cutoff),
    }


def prune_database(
    host: Host,
    store: Store,
    database: str,
    *,
    dry_run: bool,
    overrides: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Apply retention to one database's backups; return what was kept (and why) and removed."""
    policy = policy_for(host, overrides or {})
    now = now or datetime.now(UTC)
    backups = catalog.scan(store, host.name, database)
    complete = {backup.key.key: backup for backup in catalog.complete(backups)}
    decision = plan_retention(
        [Snapshot(key, backup.key.time) for key, backup in complete.items()], policy, now
    )
    keep = {snapshot.key: reasons for snapshot, reasons in decision.keep}
    remove = [snapshot.key for snapshot in decision.remove]
    drilled = catalog.newest_passing_drill(store, complete.values())
    if drilled is not None:
        keep.setdefault(drilled.key.key, []).append("newest passing drill")
        remove = [key for key in remove if key != drilled.key.key]
    stale = [
        backup for backup in backups
        if not backup.complete and now - backup.key.time > host.settings.backup.incomplete_grace
    ]  # fmt: skip
    if not dry_run:
        for removed in remove:
            backup = complete[removed]
            for key in (backup.key.manifest_key, backup.key.key, backup.key.verify_key):
                store.delete(key)
        for backup in stale:
            store.delete(backup.key.key)
            store.delete(backup.key.verify_key)
    log.info(
        "retention applied",
        task="backup.prune",
        host=host.name,
        database=database,
        kept=len(keep),
        removed=len(remove),
        incomplete=len(stale),
        dry_run=dry_run,
    )
    return {
        "database": database,
        "kept": [{"key": key, "reasons": reasons} for key, reasons in keep.items()],
        "removed": remove,
        "incomplete_removed": [backup.key.key for backup in stale],
        "keep_within": _cutoff_details(policy, decision),
    }


def stored_databases(store: Store, host: str) -> list[str]:
    """Databases (and the globals) that have objects for HOST in the store."""
    names = {backup.key.database for backup in catalog.build(store.list(host_prefix(host)))}
    return sorted(names, key=lambda name: (name == GLOBALS, name))


def prune_host(host: Host, runner: object, options: PruneOptions) -> Result:
    """Retention over every database HOST has backups of, globals included, in each of its
    stores (copies) by that store's own backups: a store that missed a night keeps its own
    newest ones."""
    overrides = dict(options.overrides)
    policy_for(host, overrides)  # refuse an empty policy before touching anything
    stores = open_host_stores(host)
    wanted = None  # every backup name; with --source, only its units (and no leftover sweep)
    if options.sources:
        wanted = {unit for kind in chosen_sources(host, options.sources) for unit in kind.units()}
    outcomes: list[dict[str, Any]] = []
    unfinished: list[dict[str, Any]] = []
    for store in stores:
        mine = [
            prune_database(host, store, name, dry_run=options.dry_run, overrides=overrides)
            for name in stored_databases(store, host.name)
            if wanted is None or name in wanted
        ]
        swept = [] if wanted is not None else sweep_leftovers(
            store, host.name, host.settings.backup.incomplete_grace,
            dry_run=options.dry_run, now=datetime.now(UTC),
        )  # fmt: skip
        if len(stores) > 1:  # say which store each line is about
            mine = [{"store": store.url, **outcome} for outcome in mine]
            swept = [{"store": store.url, **leftover} for leftover in swept]
        outcomes += mine
        unfinished += swept
    removed = sum(len(o["removed"]) + len(o["incomplete_removed"]) for o in outcomes)
    kept = sum(len(o["kept"]) for o in outcomes)
    verb = "would remove" if options.dry_run else "removed"
    status = Status.OK if options.dry_run or not (removed or unfinished) else Status.CHANGED
    summary = f"{verb} {removed} backups, kept {kept}"
    if unfinished:
        summary += f"; {verb} {len(unfinished)} unfinished writes"
    if options.dry_run:
        summary += "".join(
            f"; {o['database']}: {o['keep_within']['says']}" for o in outcomes if o["keep_within"]
        )
    return Result(
        host.name,
        status,
        details={
            "store": stores[0].url,
            "databases": outcomes,
            "unfinished_removed": unfinished,
            **({"stores": [store.url for store in stores]} if len(stores) > 1 else {}),
        },
        summary=summary,
    )
