"""`sqlite` sources: a consistent copy of a live database by SQLite's online backup API.

The copy is made on the host by its own python3 (sqlite_script.py), into a private file in
the host's `restore.tmp_dir`, counted there (the counts are the snapshot's), streamed back
with `cat` and removed. A drill checks the fetched copy with `PRAGMA integrity_check` and
compares its row counts with the manifest's; a restore copies it into place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from backups.archive.manifest import Manifest
from backups.archive.transfer import DumpError
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.settings.sources import SqliteSource as SqliteSettings

from .base import Drilled, DumpCommand, Source, compare_counts, place_file, run_python

SCRIPT = (Path(__file__).parent / "sqlite_script.py").read_text()


class SqliteSource(Source):
    kind = "sqlite"
    settings: SqliteSettings

    def extension(self) -> str:
        return "sqlite"

    @contextmanager
    def dump(self, runner: Runner, unit: str) -> Iterator[DumpCommand]:
        tmp_dir = self.host.settings.restore.tmp_dir
        try:
            made = run_python(
                runner, SCRIPT, ["snapshot", self.settings.sqlite, tmp_dir], "sqlite snapshot"
            )
        except MaintError as exc:
            raise DumpError(str(exc)) from exc
        counts: dict[str, int] = {name: int(n) for name, n in made["counts"].items()}
        try:
            yield DumpCommand(
                command=["cat", made["copy"]],
                counts=lambda: counts,
                server_version=f"SQLite {made['version']}",
            )
        finally:
            runner.run(["rm", "-f", made["copy"]])

    def drill(self, runner: Runner, unit: str, path: str, manifest: Manifest) -> Drilled:
        """The fetched file is the restored copy: checked and counted where it lies."""
        started = time.monotonic()
        found = run_python(runner, SCRIPT, ["check", path], "sqlite integrity check")
        drilled = Drilled(scratch=path, restore_s=round(time.monotonic() - started, 3))
        if found["integrity"] != ["ok"]:
            drilled.reasons.append(
                "integrity_check: " + "; ".join(map(str, found["integrity"]))[:2000]
            )
        drilled.counts, reasons = compare_counts(manifest.counts, found["counts"])
        drilled.reasons += reasons
        return drilled

    def restore(self, runner: Runner, unit: str, path: str, into: str) -> None:
        """The checked copy put at INTO; the application must not have INTO open. The journal
        files of the database replaced go first: SQLite would replay them into the copy."""
        stale = [f"{into}{suffix}" for suffix in ("-wal", "-shm", "-journal")]
        runner.run(["rm", "-f", *stale]).check()
        place_file(runner, path, into)
