"""`maint report` over real backups and drills, read in a real headless browser, and served by
the scheduler daemon at /report.

One fleet for the module: on the prod cluster, prod1 (group eu) has a database backed up twice
and drilled on the staging cluster, and one whose only backup is three days old (its keys and
manifest moved back in time); prod2 (group us) has a database backed up but never drilled.
The scheduler's SQLite state holds a health.check run and a check state for prod1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backups.archive.layout import STAMP_FORMAT
from maintenance.inventory import load_inventory
from maintenance.report import build_report, render_html
from maintenance.report.model import (
    BackupPoint,
    Drill,
    Objectives,
    Row,
)
from maintenance.scheduler.alerts import CheckState
from maintenance.scheduler.calendar import Interval
from maintenance.scheduler.config import Job
from maintenance.scheduler.state import Outcome
from maintenance.scheduler.state_sqlite import SqliteState
from tests.harness import free_port
from tests.harness.net import wait_until
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

FRESH, STALE, UNDRILLED = "rpt_fresh", "rpt_stale", "rpt_undrilled"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Fleet:
    inventory: Path
    store: Path
    state: Path
    page: Path  # the HTML `maint report` wrote
    document: dict  # `maint report --json`


def maint(*args: str) -> tuple[int, str, str]:
    done = run_maint_cli(list(args))
    return done.returncode, done.stdout, done.stderr


def _table(cluster, database: str, rows: int) -> None:
    cluster.create_database(database)
    with cluster.connect(database) as connection:
        connection.execute("CREATE TABLE items (id int PRIMARY KEY, note text)")
        connection.execute(
            "INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, %s) i", (rows,)
        )


def _move_back(store: Path, host: str, database: str, by: timedelta) -> None:
    """Date every backup of DATABASE BY earlier: its keys and its manifest's times."""
    folder = store / host / database
    for manifest_path in folder.glob("*.manifest.json"):
        manifest = json.loads(manifest_path.read_text())
        data = folder / manifest_path.name.removesuffix(".manifest.json")
        stamp, rest = data.name.split(".", 1)
        old = datetime.strptime(stamp, STAMP_FORMAT).replace(tzinfo=UTC) - by
        new_data = folder / f"{old.strftime(STAMP_FORMAT)}.{rest}"
        for key in ("started_at", "finished_at"):
            manifest[key] = (datetime.fromisoformat(manifest[key]) - by).isoformat()
        manifest["key"] = f"{host}/{database}/{new_data.name}"
        data.rename(new_data)
        Path(f"{new_data}.manifest.json").write_text(json.dumps(manifest))
        manifest_path.unlink()


def _record_scheduler_runs(state: Path) -> None:
    """What a daemon running health.check would have kept: one run, one check's state."""
    store = SqliteState(state, lock=False)
    try:
        job = Job(0, "health.check", "health.check", Interval(86400), UTC)
        started = datetime.now(UTC) - timedelta(minutes=5)
        claim = store.claim(job, started.replace(microsecond=0), "schedule")
        assert claim is not None
        hosts = [
            {"host": "prod1", "status": "ok", "duration_s": 0.8},
            {"host": "prod2", "status": "failed", "duration_s": 1.1},
        ]
        store.finish(claim, Outcome("failed", started, started + timedelta(seconds=2), hosts))
        store.keep_alert_states(
            "health.check",
            [CheckState("prod1", "disk /", "WARNING", started, message="12% free")],
        )
    finally:
        store.close()


@pytest.fixture(scope="module")
def fleet(prod_cluster, staging_cluster, tmp_path_factory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("report")
    store, state = root / "store", root / "state"
    for database in (FRESH, STALE, UNDRILLED):
        _table(prod_cluster, database, 2000)
    local = {"ansible_connection": "local", "backup": {"store": str(store)}}
    inventory = write_inventory(
        root / "inv.yaml",
        {
            "prod1": {
                **local,
                "postgres": {"dsn": prod_cluster.dsn(), "databases": [FRESH, STALE]},
                "restore_target": "staging1",
            },
            "prod2": {**local, "postgres": {"dsn": prod_cluster.dsn(), "databases": [UNDRILLED]}},
            "staging1": {**local, "postgres": {"dsn": staging_cluster.dsn()}},
        },
        all_vars={"state_dir": str(state), "schedule": [{"task": "health.check", "every": "1d"}]},
        groups={"eu": ["prod1"], "us": ["prod2"], "staging": ["staging1"]},
    )
    try:
        code, _, err = maint("backup.db", "-i", str(inventory), "--limit", "prod1:prod2")
        assert code == 0, err
        _move_back(store, "prod1", FRESH, timedelta(days=1))  # an earlier nightly backup
        _move_back(store, "prod1", STALE, timedelta(days=3))
        with prod_cluster.connect(FRESH) as connection:  # tonight's backup is bigger
            connection.execute(
                "INSERT INTO items SELECT i, md5(i::text) || md5(i::text)"
                " FROM generate_series(2001, 6000) i"
            )
        code, _, err = maint("backup.db", "-i", str(inventory), "-l", "prod1", "-d", FRESH)
        assert code == 0, err
        code, _, err = maint("restore.verify", "-i", str(inventory), "-l", "prod1", "-d", FRESH)
        assert code == 0, err
        _record_scheduler_runs(state)
        page = root / "report.html"
        code, out, err = maint("report", "-i", str(inventory), "--output", str(page))
        assert code == 0, err
        assert out.strip() == str(page)
        code, out, err = maint("report", "-i", str(inventory), "--json")
        assert code == 0, err
        yield Fleet(inventory, store, state, page, json.loads(out))
    finally:
        for database in (FRESH, STALE, UNDRILLED):
            prod_cluster.drop_database(database)


def rows_by_name(document: dict) -> dict[str, dict]:
    return {row["name"]: row for row in document["rows"]}


# --- the data ------------------------------------------------------------------------------


def test_each_database_is_judged_by_its_backup_and_drill(fleet: Fleet) -> None:
    """Fresh and drilled: green; backed up but never drilled: amber; 3 days old: red."""
    rows = rows_by_name(fleet.document)
    assert sorted(rows) == [FRESH, STALE, UNDRILLED]
    assert [(r["host"], r["groups"]) for r in (rows[FRESH], rows[STALE], rows[UNDRILLED])] == [
        ("prod1", ["eu"]),
        ("prod1", ["eu"]),
        ("prod2", ["us"]),
    ]
    assert rows[FRESH]["state"] == "ok", rows[FRESH]["reasons"]
    assert rows[UNDRILLED]["state"] == "warning"
    assert rows[UNDRILLED]["reasons"] == ["Never drilled: no restore drill has passed."]
    assert rows[STALE]["state"] == "critical"
    assert rows[STALE]["reasons"][0].startswith("The newest complete backup is 3d0h old")
    assert "over the RPO of 1d2h" in rows[STALE]["reasons"][0]
    assert fleet.document["summary"]["text"] == "2 of 3 databases within RPO, 2 never drilled"
    assert fleet.document["summary"] | {"text": ""} == {
        "rows": 3,
        "ok": 1,
        "warning": 1,
        "critical": 1,
        "within_rpo": 2,
        "never_backed_up": 0,
        "never_drilled": 2,
        "text": "",
    }


def test_rows_carry_the_trend_and_the_measured_restore(fleet: Fleet) -> None:
    """The trend lists both backups of the fresh database, oldest first, with sizes and
    durations from the manifests; the drill's restore time is the one its record holds."""
    fresh = rows_by_name(fleet.document)[FRESH]
    trend = fresh["trend"]
    assert len(trend) == 2
    assert trend[0]["age_s"] > 86000 and trend[1]["age_s"] < 600
    assert trend[1]["size"] > trend[0]["size"] > 0
    assert all(point["duration_s"] is not None and point["duration_s"] >= 0 for point in trend)
    assert fresh["backup"] == trend[-1]
    (record_path,) = (fleet.store / "prod1" / FRESH).glob("*.verify.json")
    record = json.loads(record_path.read_text())
    drill = fresh["drill"]
    assert drill["passed"] is True and drill["backup_key"] == fresh["backup"]["key"]
    assert drill["restore_time_s"] == record["restore_time_s"] > 0
    assert fresh["rpo_s"] == 26 * 3600 and fresh["drill_max_age_s"] == 8 * 86400
    assert fresh["rto_s"] is None


def test_scheduler_runs_and_check_states_are_shown_without_changing_colours(
    fleet: Fleet,
) -> None:
    """prod2's failed health.check run is listed, and its amber row stays amber."""
    maintenance = fleet.document["maintenance"]
    assert maintenance["prod1"]["runs"][0] | {"started": None} == {
        "task": "health.check",
        "job": "health.check",
        "status": "ok",
        "started": None,
        "duration_s": 0.8,
    }
    assert maintenance["prod2"]["runs"][0]["status"] == "failed"
    assert [(c["check"], c["state"]) for c in maintenance["prod1"]["checks"]] == [
        ("disk /", "WARNING")
    ]
    assert rows_by_name(fleet.document)[UNDRILLED]["state"] == "warning"


def test_rto_and_a_tiny_rpo_change_the_colours(fleet: Fleet, tmp_path: Path) -> None:
    """An rto shorter than the measured restore turns the drilled database amber, saying the
    restore time; one longer keeps it green; an rpo of a second turns a backed-up row red."""
    restore = rows_by_name(fleet.document)[FRESH]["drill"]["restore_time_s"]
    document = yaml_inventory(fleet.inventory)
    document["all"]["hosts"]["prod2"]["report"] = {"rpo": "1s"}

    def judged(rto: str) -> dict[str, tuple[str, list[str]]]:
        document["all"]["hosts"]["prod1"]["report"] = {"rto": rto, "drill_max_age": "8d"}
        (tmp_path / "inv.yaml").write_text(json.dumps(document))
        report = build_report(list(load_inventory(tmp_path / "inv.yaml")))
        return {row.name: row.judge(report.generated) for row in report.rows}

    state, reasons = judged(f"{restore / 2:.3f}s")[FRESH]
    assert state == "warning"
    assert reasons[0].startswith(f"The restore took {restore:.1f}s, over the RTO of ")
    # the fleet is built in seconds: let the undrilled backup grow older than that rpo
    backed_up = datetime.fromisoformat(rows_by_name(fleet.document)[UNDRILLED]["backup"]["time"])
    time.sleep(max(0.0, 1.2 - (datetime.now(UTC) - backed_up).total_seconds()))
    states = judged("1h")
    assert states[FRESH][0] == "ok"
    assert states[UNDRILLED][0] == "critical"
    assert "over the RPO of 1s" in states[UNDRILLED][1][0]


def yaml_inventory(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_judging_rules_without_a_store() -> None:
    """Every reason a row is not green, said in words; the newest failed drill is named."""
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    objectives = Objectives(timedelta(hours=26), timedelta(days=8), timedelta(minutes=30))
    backup = BackupPoint(now - timedelta(hours=3), "h/db/k", 1000, 12.0)
    good = Drill(now - timedelta(days=2), "h/db/k", True, 60.0)

    def judge(**fields: object) -> tuple[str, list[str]]:
        row = Row("h", ("g",), "db", "postgres", objectives, **fields)  # type: ignore[arg-type]
        return row.judge(now)

    assert judge()[0] == "critical" and judge()[1][0].startswith("Never backed up")
    assert judge(trend=(backup,), last_drill=good, last_passed=good) == (
        "ok",
        ["Backed up 3h00m ago, drill passed 2d0h ago, restored in 1m00s."],
    )
    old = Drill(now - timedelta(days=9), "h/db/k", True, 60.0)
    assert judge(trend=(backup,), last_drill=old, last_passed=old) == (
        "warning",
        ["The newest passing drill is 9d0h old, over the limit of 8d0h."],
    )
    slow = Drill(now - timedelta(days=1), "h/db/k", True, 3600.0)
    assert judge(trend=(backup,), last_drill=slow, last_passed=slow)[1] == [
        "The restore took 1h00m, over the RTO of 30m00s."
    ]
    failed = Drill(now - timedelta(hours=1), "h/db/k", False, None, ("row counts differ",))
    state, reasons = judge(trend=(backup,), last_drill=failed, last_passed=good)
    assert state == "warning"
    assert reasons == ["The newest drill (2026-03-10 11:00Z) failed: row counts differ."]


def test_names_from_the_inventory_are_escaped_in_the_page(tmp_path: Path) -> None:
    """A database name with markup in it shows as text: no tag of it reaches the page."""
    evil = '<img src=x onerror="alert(1)">'
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "db<1>": {
                "ansible_connection": "local",
                "backup": {"store": str(tmp_path / "s")},
                "postgres": {"databases": [evil]},
            }
        },
        groups={"<b>ops</b>": ["db<1>"]},
    )
    page = render_html(build_report(list(load_inventory(inventory))))
    assert "<img" not in page and "<b>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    assert 'data-groups="&lt;b&gt;ops&lt;/b&gt;"' in page and "db&lt;1&gt;" in page


def test_bad_input_exits_2_and_red_rows_exit_0(fleet: Fleet, tmp_path: Path) -> None:
    """Red rows are no error (health.check alerts); a --limit matching nothing or an output
    directory that does not exist is bad input."""
    code, _, err = maint("report", "-i", str(fleet.inventory), "--limit", "nosuch")
    assert code == 2 and "'nosuch' matches no host" in err, err
    code, _, err = maint("report", "-i", str(fleet.inventory), "-o", str(tmp_path / "no/x.html"))
    assert code == 2 and "No such file or directory" in err, err
    assert "Traceback" not in err
    broken = tmp_path / "broken.yaml"
    broken.write_text(json.dumps({"all": {"hosts": {"h": {"report": {"rpo": "26 hors"}}}}}))
    code, _, err = maint("report", "-i", str(broken))
    assert code == 2 and "report.rpo" in err and "Traceback" not in err, err


def test_limit_selects_rows(fleet: Fleet) -> None:
    """--limit us leaves only prod2's row (and its scheduler records)."""
    code, out, err = maint("report", "-i", str(fleet.inventory), "--limit", "us", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert [row["name"] for row in document["rows"]] == [UNDRILLED]
    assert list(document["maintenance"]) == ["prod2"]


# --- the page in a real browser ------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium through Playwright; failing to start fails the tests (never a skip)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def test_page_shows_rows_colours_summary_and_sorts_and_filters(fleet: Fleet, browser) -> None:
    """What a user sees from file://: the three rows in their colours, the summary; clicking a
    header sorts, the group control hides rows; no console error, no request but the page."""
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(fleet.page.as_uri())

    assert page.inner_text("#summary") == "2 of 3 databases within RPO, 2 never drilled"
    body = page.locator("#rows tbody tr")
    assert body.count() == 3

    def seen() -> list[tuple[str, str, str, str]]:
        return [
            (
                row.get_attribute("data-host"),
                row.get_attribute("data-name"),
                row.locator("td.state").inner_text(),
                row.locator("td.state").evaluate("cell => getComputedStyle(cell).backgroundColor"),
            )
            for row in body.all()
            if row.is_visible()
        ]

    green, amber, red = "rgb(200, 239, 200)", "rgb(255, 224, 138)", "rgb(246, 179, 179)"
    assert sorted(seen()) == [
        ("prod1", FRESH, "OK", green),
        ("prod1", STALE, "CRITICAL", red),
        ("prod2", UNDRILLED, "WARNING", amber),
    ]
    sparklines = page.locator(f'#rows tr[data-name="{FRESH}"] svg.spark')
    assert sparklines.count() == 2  # size and duration of its two backups

    header = page.locator("#rows thead th", has_text="Name")
    header.click()
    assert [name for _, name, _, _ in seen()] == [FRESH, STALE, UNDRILLED]
    header.click()
    assert [name for _, name, _, _ in seen()] == [UNDRILLED, STALE, FRESH]
    page.locator("#rows thead th", has_text="State").click()
    assert [state for _, _, state, _ in seen()] == ["OK", "WARNING", "CRITICAL"]

    page.select_option("#group", "us")
    assert [name for _, name, _, _ in seen()] == [UNDRILLED]
    assert page.inner_text("#shown") == "1 of 3 rows shown"
    page.emulate_media(media="print")
    assert [row.is_visible() for row in body.all()] == [True] * 3  # printing shows every row
    page.emulate_media(media="screen")
    page.select_option("#group", "")
    assert len(seen()) == 3

    assert "disk /: WARNING" in page.inner_text("#maintenance")
    assert errors == []
    assert requests == [fleet.page.as_uri()]
    page.close()


# --- the daemon's /report ------------------------------------------------------------------


def test_daemon_serves_the_report_beside_metrics(fleet: Fleet, tmp_path: Path) -> None:
    """`schedule.run` answers /report with the same page (text/html) and /metrics as before."""
    port = free_port()
    document = yaml_inventory(fleet.inventory)
    document["all"]["vars"]["metrics"] = {"listen": f"127.0.0.1:{port}"}
    document["all"]["vars"]["state_dir"] = str(tmp_path / "state")
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(json.dumps(document))
    log = tmp_path / "daemon.log"
    with open(log, "w") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "maintenance.cli", "schedule.run", "-i", str(inventory)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "MAINT_STATE_DIR": str(tmp_path / "state")},
        )
    try:
        assert wait_until(lambda: "metrics served" in log.read_text(), timeout=20), log.read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/report", timeout=20) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/html; charset=utf-8"
            page = response.read().decode()
        assert page.count("<tr class=") == 3
        assert "2 of 3 databases within RPO, 2 never drilled" in page
        assert f'data-name="{STALE}"' in page and 'class="critical"' in page
        metrics = (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        )
        assert "maint_job_next_run_timestamp_seconds" in metrics
    finally:
        daemon.terminate()
        daemon.wait(30)


def test_a_store_that_cannot_be_read_is_named_in_the_summary(tmp_path: Path) -> None:
    """A host whose store cannot be read has red rows for the databases it must back up, and
    the page names the store's error."""
    not_a_directory = tmp_path / "store"
    not_a_directory.write_text("x")
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "h1": {
                "ansible_connection": "local",
                "backup": {"store": str(not_a_directory)},
                "postgres": {"databases": ["app"]},
            }
        },
    )
    report = build_report(list(load_inventory(inventory)))
    assert report.summary()["text"] == "0 of 1 databases within RPO; 1 unreadable (listed below)"
    (row,) = report.rows
    state, reasons = row.judge(report.generated)
    assert (row.name, state) == ("app", "critical")
    assert (
        reasons[0].startswith("The backups could not be read: ") and "Not a directory" in reasons[0]
    )
    (problem,) = report.problems
    assert problem.startswith("h1: backups could not be read: ") and "Not a directory" in problem
    assert "Not a directory" in render_html(report)


def test_sources_have_rows_of_their_kind_and_copies_count_once(tmp_path: Path) -> None:
    """A sqlite source backed up into two stores (copies) is one row of kind sqlite, its one
    backup once in the trend; a source never backed up is a red row of its own."""
    import sqlite3

    database = tmp_path / "app.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        connection.execute("INSERT INTO orders (note) VALUES ('first')")
    stores = [str(tmp_path / "first"), str(tmp_path / "second")]
    sources = [{"name": "app-local", "sqlite": str(database)}]
    host = {"ansible_connection": "local", "backup": {"store": stores, "sources": sources}}
    inventory = write_inventory(tmp_path / "inv.yaml", {"app1": host})
    code, _, err = maint("backup.db", "-i", str(inventory))
    assert code == 0, err
    assert len(list((tmp_path / "second" / "app1" / "app-local").glob("*.manifest.json"))) == 1
    later = {
        **host,
        "backup": {
            "store": stores,
            "sources": [*sources, {"name": "app-other", "sqlite": str(tmp_path / "other.db")}],
        },
    }
    inventory = write_inventory(tmp_path / "inv.yaml", {"app1": later})
    report = build_report(list(load_inventory(inventory)))
    rows = {row.name: row for row in report.rows}
    assert [(row.kind, len(row.trend)) for row in rows.values()] == [("sqlite", 1), ("sqlite", 0)]
    assert rows["app-local"].judge(report.generated)[0] == "warning"
    assert rows["app-other"].judge(report.generated) == (
        "critical",
        [
            "Never backed up: no complete backup in the store.",
            "Never drilled: no restore drill has passed.",
        ],
    )
    assert "app-local (sqlite)" in render_html(report)


def test_without_a_database_list_rows_are_what_the_store_holds_but_side_series(
    fleet: Fleet, tmp_path: Path
) -> None:
    """No postgres.databases: each database the store holds is a row; `<db>~partial`,
    `<db>~safety` and the roles' `_globals` are not."""
    import shutil

    store = tmp_path / "store"
    shutil.copytree(fleet.store / "prod1", store / "prod1")
    for series in (f"{FRESH}~partial", f"{FRESH}~safety", "_globals"):
        shutil.copytree(store / "prod1" / FRESH, store / "prod1" / series)
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"prod1": {"ansible_connection": "local", "backup": {"store": str(store)}}},
    )
    report = build_report(list(load_inventory(inventory)))
    assert [row.name for row in report.rows] == [FRESH, STALE]
