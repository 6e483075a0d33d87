"""`redis` sources: an RDB snapshot streamed from the server by the replication protocol.

The host's python3 runs redis_script.py, which asks the server for a full resync as
`redis-cli --rdb` does and writes the RDB to stdout: the framework streams it like any dump.
Keys per logical database (`db0`, `db1` ...) are counted while writes are paused for the
moment the server forks its snapshot, so they are the snapshot's (see redis_script.py). The
password travels in REDISCLI_AUTH, never in argv.

A drill loads the fetched RDB into a throwaway redis-server on a private unix socket of the
drilling host (restore_target's when set) and compares its keys per database with the
manifest's; a corrupt object fails to load (Redis checks the RDB's CRC64) and fails the drill.
A restore puts the RDB at INTO, a path on the host: the server reads it when it starts (stop
it first; point `dbfilename`/`dir` at it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from backups.archive.manifest import Manifest
from maintenance.runners import Runner
from maintenance.settings.sources import RedisSource as RedisSettings

from .base import (
    Drilled,
    DumpCommand,
    Source,
    compare_counts,
    password,
    place_file,
    private_dir,
    run_python,
)

SCRIPT = (Path(__file__).parent / "redis_script.py").read_text()
# How long writes may wait for the server to fork its snapshot (milliseconds). The fork takes
# milliseconds even for large datasets; a server still busy with another child past this
# fails the backup rather than record counts that may not be the snapshot's.
PAUSE_MS = 2000


class RedisSource(Source):
    kind = "redis"
    settings: RedisSettings

    def extension(self) -> str:
        return "rdb"

    @contextmanager
    def dump(self, runner: Runner, unit: str) -> Iterator[DumpCommand]:
        target = urlsplit(self.settings.redis)
        secret = password(self.settings.redis, self.settings.password_env)
        with private_dir(runner, "maint-redis") as directory:
            yield self._dump_command(runner, target, secret, f"{directory}/counts.json")

    def _dump_command(
        self, runner: Runner, target: SplitResult, secret: str | None, counts_path: str
    ) -> DumpCommand:
        arguments = [
            "dump", counts_path, target.hostname or "127.0.0.1", str(target.port or 6379),
            "1" if target.scheme == "rediss" else "0", unquote(target.username or ""),
            str(PAUSE_MS),
        ]  # fmt: skip
        dumping = DumpCommand(
            command=["python3", "-I", "-S", "-c", SCRIPT, *arguments],
            env={"REDISCLI_AUTH": secret} if secret is not None else {},
        )

        def counts() -> dict[str, int]:
            found = json.loads(runner.run(["cat", counts_path]).check().stdout)
            dumping.server_version = f"Redis {found['version']}"  # read with the counts
            return {name: int(keys) for name, keys in found["counts"].items()}

        dumping.counts = counts
        return dumping

    def drill(self, runner: Runner, unit: str, path: str, manifest: Manifest) -> Drilled:
        started = time.monotonic()
        found = run_python(runner, SCRIPT, ["drill", path], "redis drill")
        drilled = Drilled(scratch="redis-server on a unix socket")
        drilled.restore_s = round(time.monotonic() - started, 3)
        if found["error"]:
            drilled.reasons.append(found["error"])
            return drilled
        drilled.counts, drilled.reasons = compare_counts(manifest.counts, found["counts"])
        return drilled

    def restore(self, runner: Runner, unit: str, path: str, into: str) -> None:
        """The checked RDB put at INTO; the server reads it when it starts (stop it first)."""
        place_file(runner, path, into)
