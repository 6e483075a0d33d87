"""The real scheduler daemon as a subprocess, with interval jobs of a few seconds.

Jobs run `health.check` on a local-connection host (fast); a slow job points health.check at a
TCP listener that never answers, so its PostgreSQL connect waits out the timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from maintenance.scheduler.calendar import Interval
from maintenance.scheduler.config import Job
from maintenance.scheduler.state import Outcome
from maintenance.scheduler.state_postgres import PostgresState
from tests.harness import free_port
from tests.harness.net import wait_until
from tests.inventories import write_inventory

HEALTHY = {
    "ansible_connection": "local",
    "health": {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0},
}
DISK_FULL = {
    "ansible_connection": "local",
    "health": {"disk_warn_free_pct": 100, "disk_crit_free_pct": 100},
}


class Daemon:
    """`maint schedule.run` in its own process, its JSON log lines in a file."""

    def __init__(self, inventory: Path, log: Path) -> None:
        self.log = log
        with open(log, "w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "maintenance.cli", "schedule.run", "-i", str(inventory)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text()

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and (name is None or event.get("event") == name):
                    found.append(event)
        return found

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def daemons() -> Iterator[Callable[[Path, Path], Daemon]]:
    """Start daemons; any still running at the end is killed."""
    started: list[Daemon] = []

    def start(inventory: Path, log: Path) -> Daemon:
        daemon = Daemon(inventory, log)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.kill()


def sqlite_runs(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "schedule.sqlite3"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM runs ORDER BY slot").fetchall()
        except sqlite3.OperationalError:
            return []
    return [
        {
            **dict(row),
            "slot": datetime.fromisoformat(row["slot"]),
            "hosts": json.loads(row["hosts"] or "[]"),
        }
        for row in rows
    ]


def runs_of(state_dir: Path, job: str, status: str | None = None) -> list[dict[str, Any]]:
    return [
        row
        for row in sqlite_runs(state_dir)
        if row["job"] == job and (status is None or row["status"] == status)
    ]


def schedule_inventory(path: Path, hosts: dict, schedule: list, **all_vars: Any) -> Path:
    """Write an inventory atomically: a running job may be reading the old one."""
    scratch = path.with_suffix(".tmp")
    write_inventory(scratch, hosts, all_vars={"schedule": schedule, **all_vars})
    os.replace(scratch, path)
    return path


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of the one sample NAME{LABELS} in a Prometheus exposition TEXT."""
    found = [
        each.value
        for family in text_string_to_metric_families(text)
        for each in family.samples
        if each.name == name and each.labels == labels
    ]
    assert len(found) == 1, (name, labels, text)
    return found[0]


def root_free_pct() -> float:
    """Free space on / as `df -P` counts it: available over used plus available."""
    stat = os.statvfs("/")
    used, available = stat.f_blocks - stat.f_bfree, stat.f_bavail
    return 100.0 * available / (used + available)


def assert_consecutive(slots: list[datetime], seconds: int) -> None:
    gaps = {(later - earlier).total_seconds() for earlier, later in itertools.pairwise(slots)}
    assert gaps <= {float(seconds)}, slots


def test_interval_jobs_run_on_time_and_show_in_metrics(tmp_path: Path, daemons) -> None:
    """Every 3 s slot runs, within 1.5 s of its time; metrics, textfile and history show it.

    A second job that fails every time (its --limit matches no host) does not disturb it, and a
    heartbeat endpoint that is down is only a warning.
    """
    state, port, dead_port = tmp_path / "state", free_port(), free_port()
    inventory = schedule_inventory(
        tmp_path / "inv.yaml",
        {"h": HEALTHY},
        [
            {"task": "health.check", "every": "3s"},
            {"task": "health.check", "every": "3s", "limit": "nosuchhost", "name": "broken"},
        ],
        state_dir=str(state),
        metrics={"listen": f"127.0.0.1:{port}", "textfile_dir": str(tmp_path / "prom")},
        notify={"heartbeat_url": f"http://127.0.0.1:{dead_port}/ping/sekret-ping-id"},
    )
    daemon = daemons(inventory, tmp_path / "daemon.log")
    assert wait_until(lambda: len(runs_of(state, "health.check", "ok")) >= 2, timeout=30), (
        daemon.text()
    )
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert daemon.stop() == 0

    ran = [row for row in runs_of(state, "health.check") if row["status"] != "skipped"]
    assert all(row["status"] == "ok" for row in ran), ran
    assert_consecutive([row["slot"] for row in runs_of(state, "health.check")], 3)
    for row in ran:
        late = (datetime.fromisoformat(row["started"]) - row["slot"]).total_seconds()
        assert 0 <= late < 1.5, row
    broken = [row for row in runs_of(state, "broken") if row["status"] != "skipped"]
    assert broken and all(row["status"] == "failed" for row in broken)
    assert "'nosuchhost' matches no host" in broken[0]["error"]

    assert 'maint_job_runs_total{job="health.check",status="ok"}' in metrics
    assert 'maint_task_last_status{host="h",state="ok",task="health.check"} 1.0' in metrics
    assert 'maint_job_last_status{job="broken",state="failed"} 1.0' in metrics
    assert "maint_job_last_status=" not in metrics and "maint_task_last_status=" not in metrics
    textfile = (tmp_path / "prom" / "maint_health_check.prom").read_text()
    assert 'maint_task_last_success_timestamp_seconds{host="h",task="health.check"}' in textfile
    # health.check's disk check, per host and check name: state 0 (OK) and the free percentage
    # the check measured, the same figure the filesystem reports now.
    disk = {"task": "health.check", "host": "h", "check": "disk /"}
    for text in (metrics, textfile):
        assert sample(text, "maint_check_state", disk) == 0.0
        assert abs(sample(text, "maint_check_value", disk) - root_free_pct()) < 1.0
        assert "message" not in text
    assert daemon.events("heartbeat not delivered")
    assert "sekret-ping-id" not in daemon.text()

    status = subprocess.run(
        ["maint", "schedule.status", "-i", str(inventory), "--json"], capture_output=True, text=True
    )
    assert status.returncode == 1  # a job's last run failed
    jobs = json.loads(status.stdout)["jobs"]
    assert [job["job"] for job in jobs] == ["broken", "health.check"]  # failures first
    assert jobs[1]["last_completed_status"] == "ok" and jobs[1]["last_success"]


def test_overlapping_run_is_skipped_and_sigterm_waits_for_it(tmp_path: Path, daemons) -> None:
    """A 3 s run on a 2 s cadence skips the next slot; SIGTERM lets the run end, then exits 0."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        dsn = f"postgresql://maint:pw@127.0.0.1:{silent.getsockname()[1]}/postgres"
        slow = {**HEALTHY, "postgres": {"dsn": dsn, "connect_timeout": 3}}
        state = tmp_path / "state"
        inventory = schedule_inventory(
            tmp_path / "inv.yaml",
            {"slow": slow},
            [{"task": "health.check", "every": "2s"}],
            state_dir=str(state),
            scheduler={"stop_grace": "30s"},
        )
        daemon = daemons(inventory, tmp_path / "daemon.log")

        def skipped_while_running() -> bool:
            rows = runs_of(state, "health.check")
            statuses = [row["status"] for row in rows]
            return "skipped" in statuses and statuses[-1] == "skipped" and "running" in statuses

        assert wait_until(skipped_while_running, timeout=30), daemon.text()
        stopped_at = datetime.now(UTC)
        assert daemon.stop(timeout=40) == 0
    rows = runs_of(state, "health.check")
    ran = [row for row in rows if row["status"] != "skipped"]
    assert [row["status"] for row in ran] == ["failed"] * len(ran)  # none abandoned or running
    assert datetime.fromisoformat(ran[-1]["ended"]) > stopped_at  # it was waited for
    assert all(datetime.fromisoformat(row["started"]) < stopped_at for row in ran)
    assert daemon.events("previous run still going: skipped")
    assert "scheduler stopped" in daemon.text()


def test_second_daemon_is_refused_and_kill_9_leaves_no_stale_lock(tmp_path: Path, daemons) -> None:
    """A second daemon on the same state exits at once naming the first; after kill -9 of the
    first, a new daemon starts and runs jobs."""
    state = tmp_path / "state"
    inventory = schedule_inventory(
        tmp_path / "inv.yaml",
        {"h": HEALTHY},
        [{"task": "health.check", "every": "2s"}],
        state_dir=str(state),
    )
    first = daemons(inventory, tmp_path / "first.log")
    assert wait_until(lambda: runs_of(state, "health.check", "ok"), timeout=30), first.text()

    second = daemons(inventory, tmp_path / "second.log")
    assert second.process.wait(20) == 2
    assert f"another scheduler daemon is running on {state} (pid {first.pid} on " in second.text()
    assert "Traceback" not in second.text()

    first.kill()  # SIGKILL: no cleanup of any kind
    third = daemons(inventory, tmp_path / "third.log")
    assert wait_until(
        lambda: any(
            row["daemon"].endswith(f":{third.pid}") for row in runs_of(state, "health.check", "ok")
        ),
        timeout=30,
    ), third.text()
    assert third.stop() == 0
    assert not runs_of(state, "health.check", "running")


def test_missed_runs_are_caught_up_once_after_downtime(tmp_path: Path, daemons) -> None:
    """Down for several 2 s slots, the daemon runs the job once at start, not once per slot."""
    state = tmp_path / "state"
    inventory = schedule_inventory(
        tmp_path / "inv.yaml",
        {"h": HEALTHY},
        [{"task": "health.check", "every": "2s"}],
        state_dir=str(state),
        scheduler={"catch_up": "1m"},
    )
    first = daemons(inventory, tmp_path / "first.log")
    assert wait_until(lambda: runs_of(state, "health.check", "ok"), timeout=30), first.text()
    assert first.stop() == 0
    last_before = runs_of(state, "health.check")[-1]["slot"]
    time.sleep(5)  # two or three slots pass with no daemon
    second = daemons(inventory, tmp_path / "second.log")
    assert wait_until(
        lambda: [
            row for row in runs_of(state, "health.check", "ok") if row["trigger"] == "catch-up"
        ],
        timeout=30,
    ), second.text()
    assert second.stop() == 0
    caught_up = [row for row in runs_of(state, "health.check") if row["trigger"] == "catch-up"]
    assert len(caught_up) == 1
    assert (caught_up[0]["slot"] - last_before).total_seconds() >= 4


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]]

    def do_GET(self) -> None:
        self._record(b"")

    def do_POST(self) -> None:
        self._record(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _record(self, body: bytes) -> None:
        self.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args: Any) -> None:
        pass


def test_webhook_receives_failure_then_recovery_and_heartbeats(tmp_path: Path, daemons) -> None:
    """A failing job posts 'failure'; fixed, it posts 'recovery'; the heartbeat URL gets
    /start, /fail and success pings; neither secret URL appears in the log."""
    received: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    state = tmp_path / "state"
    settings = {
        "state_dir": str(state),
        "notify": {
            "webhook_url": f"{base}/hooks/T000/B000/sekret-hook-token",
            "webhook_format": "json",
            "heartbeat_url": f"{base}/ping/sekret-ping-id",
        },
    }
    schedule = [{"task": "health.check", "every": "2s"}]
    path = tmp_path / "inv.yaml"
    schedule_inventory(path, {"h": DISK_FULL}, schedule, **settings)

    def webhooks() -> list[dict[str, Any]]:
        return [json.loads(body) for where, body in list(received) if where.startswith("/hooks/")]

    try:
        daemon = daemons(path, tmp_path / "daemon.log")
        assert wait_until(lambda: webhooks(), timeout=30), daemon.text()
        schedule_inventory(path, {"h": HEALTHY}, schedule, **settings)  # the fix
        assert wait_until(lambda: webhooks()[-1]["event"] == "recovery", timeout=30), daemon.text()
        assert daemon.stop() == 0
    finally:
        server.shutdown()
    events = [hook["event"] for hook in webhooks()]
    assert events[0] == "failure" and events[-1] == "recovery"
    failure = webhooks()[0]
    assert failure["job"] == "health.check" and failure["status"] == "failed"
    assert "disk /" in failure["error"]
    pings = {where for where, _ in received if where.startswith("/ping/")}
    assert {
        "/ping/sekret-ping-id/start",
        "/ping/sekret-ping-id/fail",
        "/ping/sekret-ping-id",
    } <= pings
    assert "sekret" not in daemon.text()


def test_each_job_pings_its_own_heartbeat(tmp_path: Path, daemons) -> None:
    """Two jobs, one failing: a `{job}` template and a job's own URL give each job its own
    check; the failing job's /start and /fail go to its URL only, the good job's pings never
    say /fail, and no URL appears in the log."""
    received: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    schedule = [
        {"task": "health.check", "every": "2s", "name": "fine job"},  # quoted: fine%20job
        {"task": "health.check", "every": "2s", "limit": "nosuchhost", "name": "broken",
         "heartbeat_url": f"{base}/own/sekret-broken-id"},
    ]  # fmt: skip
    path = schedule_inventory(
        tmp_path / "inv.yaml",
        {"h": HEALTHY},
        schedule,
        state_dir=str(tmp_path / "state"),
        notify={"heartbeat_url": f"{base}/ping/sekret-key/{{job}}"},
    )
    fine, broken = "/ping/sekret-key/fine%20job", "/own/sekret-broken-id"

    def paths() -> set[str]:
        return {where for where, _ in list(received)}

    try:
        daemon = daemons(path, tmp_path / "daemon.log")
        assert wait_until(
            lambda: {fine, f"{fine}/start", f"{broken}/start", f"{broken}/fail"} <= paths(),
            timeout=30,
        ), (paths(), daemon.text())
        assert daemon.stop() == 0
    finally:
        server.shutdown()
    assert paths() == {fine, f"{fine}/start", f"{broken}/start", f"{broken}/fail"}
    failures = [body for where, body in received if where == f"{broken}/fail"]
    assert all(b"'nosuchhost' matches no host" in body for body in failures), failures
    assert "sekret" not in daemon.text()


def test_two_daemons_on_postgres_run_each_slot_exactly_once(
    prod_cluster, tmp_path: Path, daemons
) -> None:
    """Two daemons share a PostgreSQL state database over 2 s slots: every slot runs,
    and only once, whichever daemon wins it."""
    prod_cluster.create_database("maint_schedule_ha")
    inventory = schedule_inventory(
        tmp_path / "inv.yaml",
        {"h": HEALTHY},
        [{"task": "health.check", "every": "2s"}],
        state_dsn=prod_cluster.dsn("maint_schedule_ha"),
        scheduler={"catch_up": 0},
    )
    pair = [daemons(inventory, tmp_path / f"daemon{index}.log") for index in (1, 2)]

    def rows() -> list[tuple]:
        return prod_cluster.execute(
            "SELECT slot, daemon, status FROM maint_schedule_runs ORDER BY slot",
            dbname="maint_schedule_ha",
        )

    def finished() -> int:
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            return sum(row[2] == "ok" for row in rows())
        return 0

    assert wait_until(lambda: finished() >= 6, timeout=40, interval=0.5), pair[0].text()
    assert [daemon.stop() for daemon in pair] == [0, 0]
    recorded = rows()
    started = [event["slot"] for daemon in pair for event in daemon.events("run started")]
    assert len(started) == len(set(started)), "a slot ran twice"
    ran = [row for row in recorded if row[2] != "skipped"]
    assert {datetime.fromisoformat(slot) for slot in started} == {row[0] for row in ran}
    assert all(row[2] in ("ok", "skipped") for row in recorded), recorded
    assert_consecutive([row[0] for row in recorded], 2)
    for daemon in pair:
        assert prod_cluster.password not in daemon.text()


def test_a_dead_daemons_claim_is_freed_for_another(prod_cluster) -> None:
    """While its owner lives a claimed run is nobody else's (nor is the job's next slot); once
    its session is gone, another daemon finds it abandoned and takes it over."""
    prod_cluster.create_database("maint_schedule_claims")
    dsn = prod_cluster.dsn("maint_schedule_claims")
    job = Job(1, "vacuum", "db.vacuum", Interval(60), UTC)
    slot = datetime(2024, 1, 1, 3, tzinfo=UTC)
    first, second = PostgresState(dsn), PostgresState(dsn)
    try:
        assert first.claim(job, slot, "schedule") is not None
        assert second.claim(job, slot, "schedule") is None
        later = slot + timedelta(minutes=1)
        assert second.claim(job, later, "schedule") is None  # no overlap across daemons
        assert second.abandon_orphans() == []
        first.close()  # the daemon dies mid-run: PostgreSQL ends its session and lock
        orphans: list = []
        assert wait_until(lambda: orphans.extend(second.abandon_orphans()) or orphans, timeout=10)
        assert orphans == [("vacuum", slot)]
        claim = second.claim(job, slot, "take-over")
        assert claim is not None
        now = datetime.now(UTC)
        second.finish(claim, Outcome("ok", now, now))
        (record,) = second.history(5)
        assert (record.status, record.trigger, record.daemon) == ("ok", "take-over", second.daemon)
    finally:
        second.close()
