"""Fill the report's rows from what is recorded: backup stores, drill records, run history.

Nothing is asked of a database server or a host: the report shows what backups, drills and
the scheduler wrote down, so it runs from anywhere the stores and the state database can be
read. The names of a host's rows are those that must be backed up (`postgres.databases`, else
every database a store holds, plus each unit of `backup.sources`), as health.check counts them.
With copies (`backup.store` a list) a backup counts in whichever store holds it. Hosts are
read READERS at a time: the time goes into waiting on listings and manifest reads (up to 30
per row), which for an object store are round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from backups.archive import catalog
from backups.archive.layout import GLOBALS
from backups.archive.manifest import ManifestError, read_manifest
from backups.sources import backup_kind, unit_kinds
from backups.stores import Store
from backups.stores.host import open_host_stores

from ..errors import MaintError
from ..inventory import Host
from ..scheduler.config import Job
from ..scheduler.state import StateError, StateStore
from ..secrets import mask_text
from .model import (
    TREND_LENGTH,
    BackupPoint,
    CheckState,
    Drill,
    Maintenance,
    Objectives,
    Report,
    Row,
    Run,
)

_Located = tuple[Store, catalog.StoredBackup]
READERS = 8  # hosts whose stores are read at once
SERIES_MARK = "~"  # <database>~<label>: backups kept apart from the database's own


def build_report(
    hosts: Sequence[Host],
    now: datetime | None = None,
    state: StateStore | None = None,
    jobs: Sequence[Job] = (),
) -> Report:
    """The report of HOSTS at NOW (default: the clock), with STATE's records of JOBS if given."""
    moment = now or datetime.now(UTC)
    rows: list[Row] = []
    problems: list[str] = []
    with ThreadPoolExecutor(READERS) as pool:  # listing and manifest reads wait on the stores
        for host, outcome in zip(hosts, pool.map(lambda h: _read(h, moment), hosts), strict=True):
            if isinstance(outcome, MaintError):
                problems.append(f"{host.name}: backups could not be read: {outcome}")
                rows += _unknown_rows(host, str(outcome))
            else:
                rows += outcome
    maintenance = None
    if state is not None:
        try:
            maintenance = scheduler_records(state, jobs, {host.name for host in hosts})
        except StateError as exc:
            problems.append(f"the scheduler's records could not be read: {exc}")
    return Report(moment, tuple(rows), maintenance, tuple(problems))


def _read(host: Host, now: datetime) -> list[Row] | MaintError:
    """HOST's rows, or the error that kept its stores from being read (masked)."""
    try:
        return host_rows(host, now)
    except MaintError as exc:
        return MaintError(mask_text(str(exc)))


def _unknown_rows(host: Host, why: str) -> list[Row]:
    """Red rows for what HOST must back up (its settings say so) when its stores cannot be
    read: the page must not look better for a store that is down."""
    return [
        Row(host.name, _groups(host), name, kind, _objectives(host), unreadable=why)
        for name, kind in _configured(host).items()
    ]


def _configured(host: Host) -> dict[str, str]:
    """Name -> kind of what HOST's settings name: postgres.databases, then its sources."""
    names = dict.fromkeys(host.settings.postgres.databases or (), "postgres")
    return names | {name: kind for name, kind in unit_kinds(host).items() if name not in names}


def _objectives(host: Host) -> Objectives:
    settings = host.settings.report
    return Objectives(settings.rpo, settings.drill_max_age, settings.rto)


def _groups(host: Host) -> tuple[str, ...]:
    return tuple(group for group in host.groups if group != "all")


def host_rows(host: Host, now: datetime) -> list[Row]:
    """One row per database or source of HOST. Raise MaintError if a store cannot be read."""
    objectives = _objectives(host)
    located = [
        (store, backup)
        for store in open_host_stores(host)
        for backup in catalog.scan(store, host.name)
    ]
    kinds = unit_kinds(host)
    names = list(host.settings.postgres.databases or ()) or sorted(
        {backup.key.database for _, backup in located if _is_database(backup.key.database)}
    )
    names += [name for name in kinds if name not in names]
    rows = []
    for name in names:
        present = _current([pair for pair in located if pair[1].key.database == name], now)
        last_drill, last_passed = _drills(present)
        kind = backup_kind(present[-1][1].key, kinds) if present else kinds.get(name, "postgres")
        rows.append(
            Row(
                host=host.name,
                groups=_groups(host),
                name=name,
                kind=kind,
                objectives=objectives,
                trend=tuple(_point(store, backup) for store, backup in present[-TREND_LENGTH:]),
                last_drill=last_drill,
                last_passed=last_passed,
            )
        )
    return rows


def _is_database(name: str) -> bool:
    """Whether a name a store holds backups under is a database's own series: not the roles
    (`_globals`), nor a side series (`<database>~partial` of backup.db --table,
    `<database>~safety` of restore.db --force), which never stand for the database."""
    return name != GLOBALS and SERIES_MARK not in name


def _current(located: list[_Located], now: datetime) -> list[_Located]:
    """The complete backups not dated in the future, oldest first, each once: a copy of a key
    already seen in an earlier store is the same backup."""
    seen: dict[str, _Located] = {}
    for store, backup in located:
        if catalog.current([backup], now):
            seen.setdefault(backup.key.key, (store, backup))
    return sorted(seen.values(), key=lambda pair: pair[1].key.time)


def _point(store: Store, backup: catalog.StoredBackup) -> BackupPoint:
    """BACKUP as a point of the trend; its duration from the manifest (None if unreadable)."""
    try:
        manifest = read_manifest(store, backup.key)
        duration = (
            datetime.fromisoformat(manifest.finished_at)
            - datetime.fromisoformat(manifest.started_at)
        ).total_seconds()
    except (ManifestError, ValueError):
        duration = None
    return BackupPoint(backup.key.time, backup.key.key, backup.size, duration)


def _drills(present: list[_Located]) -> tuple[Drill | None, Drill | None]:
    """The newest drill and the newest passing one, reading records newest backup first and
    stopping at the first that passed (an older backup's record is older still)."""
    drills: list[Drill] = []
    for store, backup in reversed(present):
        record = catalog.drill_result(store, backup)
        if record is None:
            continue
        drill = _drill(record, backup)
        drills.append(drill)
        if drill.passed:
            break
    if not drills:
        return None, None
    passed = [drill for drill in drills if drill.passed]
    return max(drills, key=lambda d: d.time), (passed[0] if passed else None)


def _drill(record: dict, backup: catalog.StoredBackup) -> Drill:
    """A verify.json record as a Drill; timed by when it finished (else the backup's time)."""
    try:
        time = datetime.fromisoformat(str(record.get("finished_at"))).astimezone(UTC)
    except ValueError:
        time = backup.key.time
    restore = record.get("restore_time_s")
    return Drill(
        time=time,
        backup_key=backup.key.key,
        passed=record.get("ok") is True,
        restore_time_s=float(restore) if isinstance(restore, int | float) else None,
        reasons=tuple(str(reason) for reason in record.get("reasons") or ()),
    )


def scheduler_records(
    state: StateStore, jobs: Iterable[Job], hosts: set[str]
) -> dict[str, Maintenance]:
    """Per host of HOSTS: the last run of each task (from the history) and each check's kept
    state. Raise StateError when the state database cannot be read."""
    runs: dict[str, dict[str, Run]] = {host: {} for host in hosts}
    for record in state.history(1):
        for result in record.hosts:
            host = str(result.get("host", ""))
            if host not in runs:
                continue
            run = Run(
                record.task,
                record.job,
                str(result.get("status", record.status)),
                record.started,
                _float(result.get("duration_s")),
            )
            known = runs[host].get(record.task)
            if known is None or (run.started or datetime.min.replace(tzinfo=UTC)) > (
                known.started or datetime.min.replace(tzinfo=UTC)
            ):
                runs[host][record.task] = run
    checks: dict[str, list[CheckState]] = {host: [] for host in hosts}
    for job in jobs:
        for (host, check), kept in state.alert_states(job.name).items():
            if host in checks and check:
                checks[host].append(CheckState(check, kept.state, kept.since, kept.message))
    return {
        host: Maintenance(
            runs=tuple(sorted(runs[host].values(), key=lambda run: run.task)),
            checks=tuple(sorted(checks[host], key=lambda check: check.check)),
        )
        for host in sorted(hosts)
    }


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
