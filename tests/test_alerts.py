"""Alerts on state changes, Apprise channels and `maint notify.test`, against real receivers.

An SMTP sink (aiosmtpd) and an HTTP receiver on 127.0.0.1 take what Apprise and the webhook
send; the scheduler test drives the real daemon over a few seconds of 1 s slots.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from maintenance.errors import ConfigError
from maintenance.scheduler.alerts import Alert, CheckState, Observation, evaluate, observe
from maintenance.scheduler.channels import masked_url
from maintenance.scheduler.config import load_notify
from maintenance.scheduler.state import Outcome
from maintenance.scheduler.state_postgres import PostgresState
from maintenance.scheduler.state_sqlite import SqliteState
from tests.harness import free_port
from tests.harness.net import wait_until
from tests.inventories import write_inventory
from tests.test_scheduler_daemon import (  # noqa: F401 - daemons is a fixture
    DISK_FULL,
    HEALTHY,
    _Receiver,
    daemons,
    runs_of,
    schedule_inventory,
)

DISK_LOW = {  # every disk is at or below 100 % free: WARNING, never CRITICAL
    "ansible_connection": "local",
    "health": {"disk_warn_free_pct": 100, "disk_crit_free_pct": 0},
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "sekret-token-7f3a"


# --- receivers ------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """Mail that reached the SMTP server on PORT, parsed."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"

    def url(self) -> str:
        """An Apprise mailto:// URL to this plain-SMTP server (no TLS, no login)."""
        return (
            f"mailto://127.0.0.1:{self.port}?smtp=127.0.0.1&mode=insecure"
            "&from=maint@example.com&to=ops@example.com"
        )

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in list(self.messages)]

    def text(self, message: EmailMessage) -> str:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


@dataclass
class Receiver:
    """An HTTP server recording every request's (path, body)."""

    base: str
    received: list[tuple[str, bytes]]

    def posted(self, prefix: str) -> list[dict[str, Any]]:
        return [json.loads(body) for path, body in list(self.received) if path.startswith(prefix)]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    received: list[tuple[str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Receiver(f"127.0.0.1:{server.server_address[1]}", received)
    server.shutdown()


@pytest.fixture(autouse=True)
def _fresh_receivers(smtp_sink: SmtpSink, receiver: Receiver) -> None:
    smtp_sink.messages.clear()
    receiver.received.clear()


# --- the rule: pure functions of states and slots --------------------------------------------


def run(states: dict, seen: list[Observation], at: float, repeat: float = 3) -> list[str]:
    """One run at T0+AT seconds: update STATES in place, return the alert lines."""
    kept, changes = evaluate(states, seen, T0 + timedelta(seconds=at), timedelta(seconds=repeat))
    states.update({state.key: state for state in kept})
    return [change.line() for change in changes]


def test_a_failing_check_alerts_once_then_every_repeat_then_recovers() -> None:
    """CRITICAL on every 1 s run for 10 s with a 3 s repeat: 4 alerts, not 10; then one
    recovery, then silence."""
    states: dict = {}
    critical = [Observation("db1", "disk /", "CRITICAL", "3% free")]
    alerts = {at: run(states, critical, at) for at in range(10)}
    assert {at: lines for at, lines in alerts.items() if lines} == {
        0: ["db1 disk /: new -> CRITICAL: 3% free"],
        3: ["db1 disk /: still CRITICAL since 2026-01-01T00:00:00Z: 3% free"],
        6: ["db1 disk /: still CRITICAL since 2026-01-01T00:00:00Z: 3% free"],
        9: ["db1 disk /: still CRITICAL since 2026-01-01T00:00:00Z: 3% free"],
    }
    ok = [Observation("db1", "disk /", "OK", "40% free")]
    assert run(states, ok, 10) == ["db1 disk /: CRITICAL -> OK (recovered): 40% free"]
    assert run(states, ok, 11) == [] and run(states, ok, 99) == []


def test_warning_alerts_and_each_change_of_state_alerts_at_once() -> None:
    """A new OK check is quiet; OK -> WARNING -> CRITICAL -> WARNING -> OK alert on every step,
    whatever the repeat."""
    states: dict = {}
    steps = ["OK", "WARNING", "WARNING", "CRITICAL", "WARNING", "OK"]
    said = [run(states, [Observation("h", "cert", state)], at, repeat=3600) for at, state in
            enumerate(steps)]  # fmt: skip
    assert said == [
        [],
        ["h cert: OK -> WARNING"],
        [],
        ["h cert: WARNING -> CRITICAL"],
        ["h cert: CRITICAL -> WARNING"],
        ["h cert: WARNING -> OK (recovered)"],
    ]
    assert states[("h", "cert")].since == T0 + timedelta(seconds=5)


def test_a_run_is_read_as_job_host_and_check_states() -> None:
    """The states of a run: each check of details.checks/targets with its WARNING, a failed
    host without checks CRITICAL, an unreachable one UNKNOWN; a run without a report is the
    job's CRITICAL."""
    hosts = [
        {"host": "db1", "status": "ok", "error": None, "details": {"state": "WARNING", "checks": [
            {"name": "disk /", "state": "WARNING", "message": "12% free", "value": 12.0},
            {"name": "connections", "state": "OK", "message": "3 of 100", "value": 3}]}},
        {"host": "db2", "status": "unreachable", "error": "connection refused", "details": {}},
        {"host": "db3", "status": "failed", "error": "pg_dump: error", "details": {}},
        {"host": "web", "status": "ok", "error": None, "details": {"state": "WARNING",
            "targets": [{"target": "web:443", "state": "WARNING", "error": None,
                         "certificates": [{"days_left": 9.5, "problems": []}]}]}},
    ]  # fmt: skip
    now = datetime.now(UTC)
    seen = {(o.host, o.check): (o.state, o.message) for o in observe(Outcome("failed", now, now,
            hosts=hosts))}  # fmt: skip
    assert seen == {
        ("", ""): ("OK", ""),
        ("db1", ""): ("OK", ""),
        ("db1", "disk /"): ("WARNING", "12% free"),
        ("db1", "connections"): ("OK", "3 of 100"),
        ("db2", ""): ("UNKNOWN", "connection refused"),
        ("db3", ""): ("CRITICAL", "pg_dump: error"),
        ("web", ""): ("OK", ""),
        ("web", "web:443"): ("WARNING", "9.5 days left"),
    }
    crashed = Outcome("failed", now, now, error="task exited 2: 'nosuchhost' matches no host")
    assert list(observe(crashed)) == [
        Observation("", "", "CRITICAL", "task exited 2: 'nosuchhost' matches no host")
    ]


def test_one_message_per_run_names_every_change_worst_first() -> None:
    """Three changes in one run make one message: the title names them, worst first, and
    the body says each host/check, its old and new state and why."""
    states = {("db2", ""): CheckState("db2", "", "UNKNOWN", T0, T0)}
    seen = [
        Observation("db1", "disk /", "WARNING", "12% free"),
        Observation("db2", "", "OK"),
        Observation("db3", "cert", "CRITICAL", "expired"),
    ]
    _, changes = evaluate(states, seen, T0 + timedelta(minutes=5), timedelta(hours=24))
    alert = Alert("health.check", "health.check", T0, tuple(changes), repeat=timedelta(hours=24))
    assert alert.title == (
        "maint health.check: db3 cert CRITICAL, db1 disk / WARNING, db2 recovered"
    )
    assert alert.body.splitlines()[:3] == [
        "db3 cert: new -> CRITICAL: expired",
        "db1 disk /: new -> WARNING: 12% free",
        "db2: UNKNOWN -> OK (recovered)",
    ]
    assert "Repeated every 1 day while not OK." in alert.body
    assert alert.event == "failure"


def test_channels_are_shown_without_secrets() -> None:
    """Scheme and host only; no host at all where a service puts a token in its place."""
    assert masked_url(f"mailtos://ops:{SECRET}@smtp.example.com:587?to=a@example.com") == (
        "mailtos://smtp.example.com:587/…"
    )
    assert masked_url(f"json://127.0.0.1:8080/hooks/{SECRET}") == "json://127.0.0.1:8080/…"
    assert masked_url(f"slack://T0000/B0000/{SECRET}") == "slack://…"
    assert masked_url(f"tgram://123456:{SECRET}/987") == "tgram://…"


# --- state kept in both stores --------------------------------------------------------------


def _round_trip(store: Any) -> None:
    first = [
        CheckState("db1", "disk /", "CRITICAL", T0, T0, "3% free"),
        CheckState("", "", "OK", T0, None, ""),
    ]
    store.keep_alert_states("health.check", first)
    later = CheckState("db1", "disk /", "OK", T0 + timedelta(hours=1), T0 + timedelta(hours=1))
    store.keep_alert_states("health.check", [later])
    assert store.alert_states("health.check") == {
        ("db1", "disk /"): later,
        ("", ""): first[1],
    }
    assert store.alert_states("backup.db") == {}


def test_alert_states_are_kept_in_sqlite_and_an_old_state_database_gains_them(
    tmp_path: Path,
) -> None:
    """A state directory from before alerts (runs only) opens, keeps its runs, and stores
    alert states."""
    tmp_path.joinpath("state").mkdir()
    with sqlite3.connect(tmp_path / "state" / "schedule.sqlite3") as old:
        old.execute(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL, task TEXT NOT NULL,"
            " slot TEXT NOT NULL, trigger TEXT NOT NULL, daemon TEXT NOT NULL, started TEXT,"
            " ended TEXT, status TEXT NOT NULL, hosts TEXT, error TEXT, UNIQUE (job, slot))"
        )
        old.execute(
            "INSERT INTO runs (job, task, slot, trigger, daemon, status) VALUES ('health.check',"
            " 'health.check', '2025-01-01T00:00:00.000000+00:00', 'schedule', 'a:1', 'ok')"
        )
    store = SqliteState(tmp_path / "state", lock=False)
    try:
        _round_trip(store)
        assert [record.status for record in store.history(5)] == ["ok"]
    finally:
        store.close()


def test_alert_states_are_kept_in_postgresql(prod_cluster) -> None:
    """The shared PostgreSQL state keeps them too, so any daemon of a pair alerts right."""
    prod_cluster.create_database("maint_schedule_alerts")
    store = PostgresState(prod_cluster.dsn("maint_schedule_alerts"))
    try:
        _round_trip(store)
    finally:
        store.close()


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify", "says"),
    [
        ({"urls": [f"json://127.0.0.1/{SECRET}", f"mailtoo://ops:{SECRET}@example.com"]},
         "notify.urls[1]: unknown Apprise scheme 'mailtoo'"),
        ({"urls": [f"mailto://ops:{SECRET}@"]},
         "notify.urls[0]: Apprise cannot use this mailto:// URL: a part is missing or malformed"),
        ({"urls": [f"127.0.0.1/{SECRET}"]}, "notify.urls[0]: expected an Apprise URL"),
        ({"urls": [5]}, "notify.urls[0]: expected text, got 5"),
        ({"urls": [""]}, "notify.urls[0]: must not be empty"),
        ({"urls": {"mail": f"json://127.0.0.1/{SECRET}"}}, "notify.urls: expected a list"),
        ({"url": [f"json://127.0.0.1/{SECRET}"]}, "notify.url: unknown key 'url'; did you mean "
         "'urls'?"),
        ({"repeat": 0}, "notify.repeat: expected between 1 second and 365 days, got 0 seconds"),
        ({"repeat": "2y"}, "notify.repeat: expected between 1 second and 365 days, got 730 days"),
        ({"repeat": "24x"}, "notify.repeat: unknown unit 'x' in '24x'"),
        ({"repeat": True}, "notify.repeat: expected a duration"),
        ({"repet": "4h"}, "notify.repet: unknown key 'repet'; did you mean 'repeat'?"),
    ],
)  # fmt: skip
def test_broken_notify_settings_are_refused_at_load(
    tmp_path: Path, notify: dict, says: str
) -> None:
    """Refused when the notify settings load (schedule.*, config.check, notify.test), with
    file, group and key path; the URL's secret parts are never repeated."""
    path = write_inventory(tmp_path / "inv.yaml", {"h": HEALTHY}, all_vars={"notify": notify})
    with pytest.raises(ConfigError) as refused:
        load_notify(path)
    assert f"{path}: group 'all'" in str(refused.value)
    assert says in str(refused.value)
    assert SECRET not in str(refused.value)


def test_config_check_refuses_a_bad_url_and_show_masks_the_good_ones(tmp_path: Path) -> None:
    """Through the real commands: config.check and schedule.run exit 2 without a traceback or
    the secret; valid URLs are masked by `config.check --show`."""
    good = [f"json://127.0.0.1:9/{SECRET}", f"mailto://ops:{SECRET}@example.com"]
    path = write_inventory(tmp_path / "inv.yaml", {"h": HEALTHY},
                           all_vars={"notify": {"urls": [*good, f"nope://{SECRET}"]}})  # fmt: skip
    done = subprocess.run(["maint", "config.check", "-i", str(path)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "notify.urls[2]: unknown Apprise scheme 'nope'" in done.stderr
    assert SECRET not in done.stdout + done.stderr and "Traceback" not in done.stderr
    daemon = subprocess.run(["maint", "schedule.run", "-i", str(path)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert daemon.returncode == 2  # checked by its forked child: the daemon never starts
    assert "notify.urls[2]: unknown Apprise scheme 'nope'" in daemon.stderr
    assert SECRET not in daemon.stdout + daemon.stderr
    write_inventory(path, {"h": HEALTHY}, all_vars={"notify": {"urls": good}})
    shown = subprocess.run(["maint", "config.check", "-i", str(path), "--show", "h"],
                           capture_output=True, text=True)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "notify.urls" in shown.stdout and SECRET not in shown.stdout


# --- notify.test ----------------------------------------------------------------------------


def test_notify_test_reaches_mail_and_webhooks(
    tmp_path: Path, smtp_sink: SmtpSink, receiver: Receiver
) -> None:
    """Every channel gets the test message: a mail in the sink, Apprise's JSON and the webhook's
    Slack body; each channel is listed without its secret; heartbeats are not pinged."""
    notify = {
        "urls": [smtp_sink.url(), f"json://{receiver.base}/apprise/{SECRET}"],
        "webhook_url": f"http://{receiver.base}/hooks/{SECRET}",
        "heartbeat_url": f"http://{receiver.base}/ping/{SECRET}",
    }
    path = write_inventory(tmp_path / "inv.yaml", {"h": HEALTHY}, all_vars={"notify": notify})
    dry = subprocess.run(["maint", "notify.test", "-i", str(path), "--dry-run"],
                         capture_output=True, text=True)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "3 channel(s), none sent (dry run)" in dry.stdout and not receiver.received
    done = subprocess.run(["maint", "notify.test", "-i", str(path)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["webhook_url", f"http://{receiver.base}/…", "sent"]
    assert lines[1].split() == ["urls[0]", f"mailto://127.0.0.1:{smtp_sink.port}/…", "sent"]
    assert lines[2].split() == ["urls[1]", f"json://{receiver.base}/…", "sent"]
    assert lines[3] == "notify.test: 3 sent, 0 failed"
    assert "heartbeat URLs are not pinged" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    (mail,) = smtp_sink.messages
    assert mail["Subject"] == "maint: test message" and mail["To"] == "ops@example.com"
    assert "this channel reaches you" in smtp_sink.text(mail)
    (apprise_json,) = receiver.posted("/apprise/")
    assert apprise_json["title"] == "maint: test message"
    (hook,) = receiver.posted("/hooks/")
    assert hook["text"].startswith(":bell: *maint: test message*")
    assert not receiver.posted("/ping/")


def test_notify_test_names_the_channels_that_failed_and_exits_1(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """A channel that is down (nothing listens) and one that never answers (a listener that
    never replies): exit 1 with each reason in the JSON document, the silent one given up
    after notify.timeout; the working channel still gets its message. No channel: exit 2."""
    dead = free_port()
    with socket.create_server(("127.0.0.1", 0)) as silent:
        quiet = silent.getsockname()[1]
        notify = {
            "timeout": 1,
            "urls": [
                smtp_sink.url(),
                f"json://127.0.0.1:{dead}/{SECRET}",
                f"json://127.0.0.1:{quiet}/{SECRET}",
            ],
        }
        path = write_inventory(tmp_path / "inv.yaml", {"h": HEALTHY}, all_vars={"notify": notify})
        started = time.monotonic()
        done = subprocess.run(["maint", "notify.test", "-i", str(path), "--json"],
                              capture_output=True, text=True)  # fmt: skip
        took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 10, took
    results = [(r["host"], r["status"], r["error"]) for r in json.loads(done.stdout)["results"]]
    assert results[0] == (f"urls[0] mailto://127.0.0.1:{smtp_sink.port}/…", "ok", None)
    assert results[1][:2] == (f"urls[1] json://127.0.0.1:{dead}/…", "failed")
    assert results[1][2].startswith("not sent: A Connection error occurred sending JSON")
    assert results[2][:2] == (f"urls[2] json://127.0.0.1:{quiet}/…", "failed")
    assert results[2][2].startswith("not sent: ")
    assert len(smtp_sink.messages) == 1 and SECRET not in done.stdout + done.stderr

    empty = write_inventory(tmp_path / "none.yaml", {"h": HEALTHY})
    nothing = subprocess.run(["maint", "notify.test", "-i", str(empty)], capture_output=True,
                             text=True)  # fmt: skip
    assert nothing.returncode == 2
    assert "no alert channel in the inventory: set notify.urls" in nothing.stderr


# --- the daemon -----------------------------------------------------------------------------


def test_daemon_alerts_on_changes_repeats_while_critical_and_says_recovered(
    tmp_path: Path,
    daemons,  # noqa: F811 - the fixture imported above
    smtp_sink: SmtpSink,
    receiver: Receiver,
) -> None:
    """health.check every 1 s with notify.repeat 3s: OK (quiet), WARNING (a mail), CRITICAL
    until two reminders came (one alert, then one each 3 s of slots at most, fewer than the
    runs), then OK (a recovery). The mail carries the state in its subject and body; the
    webhook's JSON says the same; no URL secret in the log."""
    state = tmp_path / "state"
    settings = {
        "state_dir": str(state),
        "notify": {
            "repeat": "3s",
            "urls": [smtp_sink.url()],
            "webhook_url": f"http://{receiver.base}/hooks/{SECRET}",
            "webhook_format": "json",
        },
    }
    schedule = [{"task": "health.check", "every": "1s"}]
    path = schedule_inventory(tmp_path / "inv.yaml", {"h": HEALTHY}, schedule, **settings)
    daemon = daemons(path, tmp_path / "daemon.log")

    def phase(hosts: dict, until: str) -> None:
        schedule_inventory(path, hosts, schedule, **settings)
        assert wait_until(lambda: any(until in s for s in smtp_sink.subjects()), timeout=30), (
            smtp_sink.subjects(),
            daemon.text(),
        )

    assert wait_until(lambda: runs_of(state, "health.check", "ok"), timeout=30), daemon.text()
    phase({"h": DISK_LOW}, "h disk / WARNING")
    phase({"h": DISK_FULL}, "h disk / CRITICAL")
    reminded = "maint health.check: h disk / still CRITICAL"
    assert wait_until(lambda: smtp_sink.subjects().count(reminded) >= 2, timeout=30)
    phase({"h": HEALTHY}, "h disk / recovered")
    assert daemon.stop() == 0

    subjects = smtp_sink.subjects()
    assert subjects[0] == "maint health.check: h disk / WARNING"
    assert subjects[1] == "maint health.check: h disk / CRITICAL"
    reminders = subjects[2:-1]
    assert len(reminders) >= 2 and set(reminders) == {reminded}
    assert subjects[-1] == "maint health.check: h disk / recovered"
    assert "h disk /: OK -> WARNING: " in smtp_sink.text(smtp_sink.messages[0])
    assert "h disk /: WARNING -> CRITICAL: " in smtp_sink.text(smtp_sink.messages[1])
    assert "% free" in smtp_sink.text(smtp_sink.messages[1])

    hooks = receiver.posted("/hooks/")
    assert [hook["title"] for hook in hooks] == subjects
    assert [hook["event"] for hook in hooks] == ["warning"] + ["failure"] * (len(hooks) - 2) + [
        "recovery"
    ]
    critical_slots = [datetime.fromisoformat(hook["slot"]) for hook in hooks[1:-1]]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(critical_slots)]
    assert all(gap >= 3 for gap in gaps), gaps
    failed_runs = runs_of(state, "health.check", "failed")
    # Runs on every free slot (1 s apart when a run is quick), alerts 3 s of slots apart: on a
    # loaded machine a run can take 3 s and every run alerts, never more often.
    assert len(failed_runs) >= len(critical_slots)
    span = (failed_runs[-1]["slot"] - failed_runs[0]["slot"]).total_seconds()
    assert len(critical_slots) <= span // 3 + 1, (len(critical_slots), span)
    assert daemon.events("alert sent") and SECRET not in daemon.text()
