"""A drill's restore that runs while its backup is still arriving.

backups.postgres.restore_units cuts the restore into pg_restore runs; this module starts each
one as soon as what it reads is on the host. The fetch (backups.postgres.fetch) writes the
file on the host and hands over the table of contents as it goes by, and meanwhile the scratch
database is created. On the host, a run waits in a small shell loop until the file holds the
bytes it needs, and gives up when the writer (its pid file) ended before them or the drill
gave up (a marker file). A streamed table's pg_restore reads the header, then follows the
file from its data block with GNU `tail -f` as the bytes land; the file's size is always
what has been written, since the writer leaves no holes. A host without GNU coreutils, and a
backup without recorded data offsets, get the fetch-then-restore drill instead.

The sha256 is known only when the download ends, after the restore began. A drill restores
into a scratch database, so a damaged backup costs a scratch database that is then dropped
and the drill fails naming the mismatch; restore.db, which writes into a real database,
still checks the whole file before anything starts.
"""

from __future__ import annotations

import io
import posixpath
import shlex
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from backups.archive.layout import BackupKey
from backups.archive.manifest import Manifest
from backups.archive.toc import Toc
from backups.postgres.clients import ClientTool
from backups.postgres.fetch import FetchStopped, fetch_to_host
from backups.postgres.restore_tool import restore_command, restore_tool
from backups.postgres.restore_units import Lane, Unit, block_sizes, plan_units
from backups.postgres.scratch import create_scratch
from backups.stores import Store
from maintenance import pg
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.secrets import mask_text
from maintenance.stopwatch import timed_step

# Exit status of a host's wait loop when the bytes will not come.
GAVE_UP = 75
FOLLOW_PROBE = "tail --pid=$$ -s 0.01 -c 0 /dev/null && stat -c %s /dev/null >/dev/null"
POLL_S = 0.02
# The writer writes its pid file before its first byte: a wait loop that sees none for this
# long stops rather than wait for a download that failed to start (a drill's marker may not
# be writable there either).
WRITER_START_S = 10


def _first_failure(future: Future, fetch: Future) -> None:
    """Wait for FUTURE; raise the fetch's error as soon as the fetch fails, since what FUTURE
    runs may be waiting for bytes that will never come."""
    wait([future, fetch], return_when=FIRST_COMPLETED)
    if not future.done() and fetch.exception() is not None:
        raise fetch.exception()  # type: ignore[misc]  # just tested: not None
    future.result()


def host_can_follow(runner: Runner) -> bool:
    """Whether the host has what the streamed restore's shell pieces use (GNU coreutils)."""
    return runner.run(FOLLOW_PROBE).ok


class StreamedRestore:
    """Fetch KEY to PATH on the host and restore it into SCRATCH (created here) at once.

    `steps` holds the drill's step times: download_s and create_s overlap restore_s, and
    fetch_and_restore_s is the whole, the time from the first byte read to a restored
    database.
    """

    def __init__(
        self,
        store: Store,
        key: BackupKey,
        manifest: Manifest,
        runner: Runner,
        server: pg.Postgres,
        scratch: str,
        path: str,
        jobs: int,
    ) -> None:
        self.store, self.key, self.manifest = store, key, manifest
        self.runner, self.server, self.scratch, self.path = runner, server, scratch, path
        self.jobs = max(1, jobs)
        self.pidfile, self.cancel = f"{path}.pid", f"{path}.cancel"
        self.steps: dict[str, float] = {}
        self._toc: Toc | None = None
        self._patched: bytes | None = None
        self._toc_seen = threading.Event()
        self._stopping = threading.Event()
        self._lists: list[str] = []
        self._tool: ClientTool | None = None

    def run(self) -> None:
        """Raise the fetch's error (IntegrityError ...) when it failed, else the first unit's."""
        started = time.monotonic()
        self._tool = restore_tool(self.server, self.runner, self.manifest)
        pool = ThreadPoolExecutor(max_workers=self.jobs + 2, thread_name_prefix="drill")
        fetch = pool.submit(timed_step, self.steps, "download_s", self._fetch)
        running = [fetch]
        try:
            timed_step(self.steps, "create_s", create_scratch, self.server, self.scratch)
            self._restore(pool, fetch, running)
        except BaseException as exc:
            self._give_up(running)
            cause = fetch.exception()
            if cause is not None and cause is not exc and not isinstance(cause, FetchStopped):
                raise cause from None
            raise
        finally:
            pool.shutdown(wait=True)
            self.runner.run(["rm", "-f", self.pidfile, self.cancel, *self._lists])
        self.steps["fetch_and_restore_s"] = round(time.monotonic() - started, 3)

    def _restore(self, pool: ThreadPoolExecutor, fetch: Future, running: list[Future]) -> None:
        """The units in their order: the schema; the lanes and the rest's parts as their bytes
        land (the rest's last part once the whole file is there and checked); final last."""
        toc = self._wait_for_toc(fetch)
        started = time.monotonic()
        if toc is None:  # not an archive the planner can read: restore the complete file
            fetch.result()
            self._run_unit(Unit("everything", (), self.jobs))
        else:
            offsets = self.manifest.offsets() or {}
            rows = {name: count.rows for name, count in self.manifest.tables.items()}
            plan = plan_units(toc, offsets, block_sizes(toc, offsets, rows), self.jobs)
            schema = pool.submit(self._run_unit, plan.pre)
            running.append(schema)
            _first_failure(schema, fetch)
            self._patch_offsets()
            running += [pool.submit(self._run_lane, lane, plan.header_end) for lane in plan.lanes]
            if plan.rest:
                running.append(pool.submit(self._run_rest, plan.rest, fetch))
            fetch.result()
            for future in running[2:]:
                future.result()
            if plan.final is not None:
                self._run_unit(plan.final)
        self.steps["restore_s"] = round(time.monotonic() - started, 3)

    def _fetch(self) -> None:
        fetch_to_host(
            self.store, self.key, self.manifest, self.runner, self.path,
            on_toc=self._seen, pidfile=self.pidfile, stop=self._stopping,
        )  # fmt: skip

    def _seen(self, toc: Toc, patched: bytes | None) -> None:
        self._toc, self._patched = toc, patched
        self._toc_seen.set()

    def _patch_offsets(self) -> None:
        """Write the header+TOC with the data offsets over the file's start (the writer is
        past it: the schema unit waited for those bytes), so that the parts that read the
        file seek straight to their tables; the fetch writes the same again at the end."""
        if self._patched is not None:
            write = f"dd of={shlex.quote(self.path)} conv=notrunc status=none"
            self.runner.stream(write, stdin=io.BytesIO(self._patched)).check()

    def _run_rest(self, parts: tuple[Unit, ...], fetch: Future) -> None:
        """The rest's parts one after the other: each once its tables are on the host, the
        last once the whole file is there and checked."""
        for part in parts:
            if not part.landed:
                fetch.result()
            self._run_unit(part)

    def _wait_for_toc(self, fetch: Future) -> Toc | None:
        """The TOC once it went by; None if the fetch ended without one (its error raised)."""
        while not self._toc_seen.wait(POLL_S):
            if fetch.done():
                fetch.result()
                return self._toc
        return self._toc

    def _run_lane(self, lane: Lane, header_end: int) -> None:
        self._run_unit(lane.data, header_end=header_end)
        if lane.post is not None:
            self._run_unit(lane.post)

    def _run_unit(self, unit: Unit, header_end: int = 0) -> None:
        """One pg_restore run on the host; raise MaintError naming the unit if it fails."""
        if self._stopping.is_set():
            raise MaintError(f"pg_restore ({unit.label}) not started: the drill stopped")
        assert self._tool is not None  # found before any unit runs
        conninfo, env = self.server.client(self.scratch)
        stdin: io.BytesIO | None = None
        if unit.stream_from is not None:
            [dump_id] = unit.dump_ids  # a lane is one table's data
            listfile = f"{self.path}.{dump_id}.list"
            self._lists.append(listfile)
            restore = restore_command(self._tool, conninfo, None, 1, use_list=listfile)
            command = (
                f"{self._wait_for(max(unit.stream_from + 1, header_end))} && "
                f"umask 077 && echo {dump_id} > {shlex.quote(listfile)} && "
                f"{self._follow(unit.stream_from, header_end)} | {shlex.join(restore)}"
            )
        else:
            use_list = "/dev/stdin" if unit.dump_ids else None
            restore = restore_command(self._tool, conninfo, self.path, unit.jobs, use_list=use_list)
            command = shlex.join(restore)
            if unit.landed:
                command = f"{self._wait_for(unit.landed)} && {command}"
            if unit.dump_ids:
                stdin = io.BytesIO("".join(f"{d}\n" for d in unit.dump_ids).encode())
        result = self.runner.run(command, env=env, stdin=stdin)
        if result.exit_code != 0:
            detail = mask_text(result.stderr.strip())[-2000:]
            raise MaintError(
                f"pg_restore ({unit.label}) exited with status {result.exit_code}: {detail}"
            )

    def _follow(self, start: int, header_end: int) -> str:
        """The archive as pg_restore reading a pipe would see it: the header and TOC, then
        from byte START on, following the file until the writer ends."""
        path = shlex.quote(self.path)
        tail = f'tail -c +{start + 1} --pid="$(cat {shlex.quote(self.pidfile)})" -s {POLL_S} -f'
        return f"{{ head -c {header_end} {path} && {tail} {path}; }}"

    def _wait_for(self, need: int) -> str:
        """A shell loop that returns once the file holds NEED bytes, and exits GAVE_UP when
        the writer ended short of them, never started (no pid file within WRITER_START_S) or
        the drill gave up."""
        path, pid, cancel = map(shlex.quote, (self.path, self.pidfile, self.cancel))
        size = f"$(stat -c %s {path} 2>/dev/null || echo 0)"
        ended = f'[ -s {pid} ] && ! kill -0 "$(cat {pid})" 2>/dev/null'
        polls = int(WRITER_START_S / POLL_S)
        directory = shlex.quote(posixpath.dirname(self.path) or ".")
        return (
            f"if [ ! -w {directory} ]; then echo 'cannot write to {directory}' >&2; "
            f"exit {GAVE_UP}; fi; "
            f"n=0; while [ {size} -lt {need} ]; do "
            f"[ -e {cancel} ] && exit {GAVE_UP}; "
            f"if {ended} && [ {size} -lt {need} ]; then "
            f"echo 'the backup ended before byte {need}' >&2; exit {GAVE_UP}; fi; "
            f"n=$((n + 1)); if [ ! -s {pid} ] && [ $n -gt {polls} ]; then "
            f"echo 'the download never started' >&2; exit {GAVE_UP}; fi; "
            f"sleep {POLL_S}; done"
        )

    def _give_up(self, running: list[Future]) -> None:
        """Stop what still runs: the fetch at its next read, wait loops at the marker,
        pg_restore when its sessions end. The scratch database is the caller's to drop or
        keep."""
        self._stopping.set()
        self.runner.run(["touch", self.cancel])
        try:
            with self.server.connect() as connection:
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.scratch,),
                )
        except MaintError:
            pass  # the server is gone too: nothing of the restore still runs there
        for future in running:
            future.exception()  # wait; the first failure is already on its way up
