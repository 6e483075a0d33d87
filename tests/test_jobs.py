"""job.run: the inventory's named jobs, SQL on the real prod cluster and commands on real hosts.

The SQL tests run the runbooks' stuck-job reset ("jobs IN_PROGRESS for more than 30 minutes:
mark them FAILED") on a jobs table holding stuck, recent and finished rows, in this process
through the same invoke program as `maint`. Command jobs run on the local runner and on an
sshd host of the fleet. Broken `jobs` entries are refused at load, in the user's words.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maintenance.cli.collection import build_namespace
from maintenance.errors import ConfigError
from maintenance.inventory import load_inventory
from maintenance.scheduler.catalog import catalog_from
from maintenance.scheduler.config import load_settings
from tests.db_helpers import run_maint, run_maint_text, scratch_database
from tests.inventories import fleet_vars, write_inventory

STUCK, RECENT, FINISHED = 5, 3, 4
RESET_STUCK = (
    "UPDATE jobs SET status = 'failed' WHERE status = 'processing'"
    " AND started_at < now() - interval '30 minutes'"
)


@pytest.fixture(scope="module")
def app_db(prod_cluster) -> Iterator[str]:
    with scratch_database(prod_cluster) as name:
        yield name


@pytest.fixture
def jobs_table(prod_cluster, app_db: str) -> str:
    """A fresh jobs table: STUCK processing rows started 31 to 71 minutes ago, RECENT
    processing rows started 1 to 21 minutes ago, FINISHED done rows started days ago."""
    with prod_cluster.connect(app_db) as connection:
        connection.execute(
            "DROP TABLE IF EXISTS jobs; CREATE TABLE jobs"
            " (id serial PRIMARY KEY, status text NOT NULL, started_at timestamptz NOT NULL)"
        )
        for status, count, ago in (
            ("processing", STUCK, "31 minutes"),
            ("processing", RECENT, "1 minute"),
            ("done", FINISHED, "3 days"),
        ):
            connection.execute(
                "INSERT INTO jobs (status, started_at) SELECT %s,"
                " now() - %s::interval - g * interval '10 minutes' + interval '10 minutes'"
                " FROM generate_series(1, %s) g",
                (status, ago, count),
            )
    return app_db


def statuses(cluster, database: str) -> dict[str, int]:
    rows = cluster.execute("SELECT status, count(*) FROM jobs GROUP BY status", dbname=database)
    return {status: count for status, count in rows}


def sql_inventory(tmp_path: Path, cluster, database: str, *jobs: dict[str, Any]) -> Path:
    """db1 on the local connection, its DSN on the postgres database (the jobs name theirs)."""
    return write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local", "postgres": {"dsn": cluster.dsn()},
                 "jobs": [{"database": database, **job} for job in jobs]}},
    )  # fmt: skip


def only(report: dict) -> dict:
    [result] = report["results"]
    return result


BEFORE = {"processing": STUCK + RECENT, "done": FINISHED}


def test_stuck_job_reset_fails_exactly_the_stuck_rows(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """The runbook's reset marks the 5 stuck rows failed; recent and finished rows stay."""
    job = {"name": "fail-stuck-jobs", "max_rows": 100, "sql": RESET_STUCK}
    inventory = sql_inventory(tmp_path, prod_cluster, jobs_table, job)
    code, report, _ = run_maint("job.run", inventory, "--name", "fail-stuck-jobs")
    assert code == 0, report
    result = only(report)
    assert result["status"] == "changed"
    assert (result["details"]["rows"], result["details"]["command"]) == (STUCK, "UPDATE")
    assert result["summary"] == f"changed {STUCK} rows in {jobs_table}"
    assert statuses(prod_cluster, jobs_table) == {
        "processing": RECENT, "failed": STUCK, "done": FINISHED,
    }  # fmt: skip
    stuck_left = prod_cluster.execute(
        "SELECT count(*) FROM jobs WHERE status = 'processing'"
        " AND started_at < now() - interval '30 minutes'",
        dbname=jobs_table,
    )
    assert stuck_left == [(0,)]


def test_dry_run_reports_the_rows_and_changes_nothing(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """--dry-run says 5 rows would change, rolls back, and the table is as it was."""
    inventory = sql_inventory(
        tmp_path, prod_cluster, jobs_table, {"name": "fail-stuck-jobs", "sql": RESET_STUCK}
    )
    done = run_maint_text("job.run", inventory, "--name", "fail-stuck-jobs", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert f"would change {STUCK} rows in {jobs_table} (dry run: rolled back)" in done.stdout
    assert statuses(prod_cluster, jobs_table) == BEFORE


def test_more_rows_than_max_rows_rolls_back_and_fails_the_host(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """max_rows 3 against 5 stuck rows: nothing changes, the host fails, exit 1 (DESIGN)."""
    job = {"name": "fail-stuck-jobs", "max_rows": 3, "sql": RESET_STUCK}
    inventory = sql_inventory(tmp_path, prod_cluster, jobs_table, job)
    for dry_run in ((), ("--dry-run",)):
        code, report, _ = run_maint("job.run", inventory, "--name", "fail-stuck-jobs", *dry_run)
        result = only(report)
        assert (code, result["status"]) == (1, "failed"), report
        assert result["error"] == f"would change {STUCK} rows, more than max_rows 3: rolled back"
        assert result["details"]["rows"] == STUCK
    assert statuses(prod_cluster, jobs_table) == BEFORE


def test_parameters_are_bound_and_a_select_counts_rows_returned(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """%(name)s values are bound, a quote in one is data; a SELECT reports the rows it returned."""
    jobs = (
        {"name": "list-recent", "sql": "SELECT id FROM jobs WHERE status = %(status)s"
         " AND started_at > now() - %(age)s::interval",
         "parameters": {"status": "processing", "age": "30 minutes"}},
        {"name": "tag", "sql": "UPDATE jobs SET status = %(status)s WHERE status = 'done'",
         "parameters": {"status": "it's done'); DROP TABLE jobs; --"}},
    )  # fmt: skip
    inventory = sql_inventory(tmp_path, prod_cluster, jobs_table, *jobs)
    code, report, _ = run_maint("job.run", inventory, "--name", "list-recent")
    assert (code, only(report)["status"], only(report)["details"]["rows"]) == (0, "ok", RECENT)
    assert only(report)["summary"] == f"returned {RECENT} rows in {jobs_table}"
    code, report, _ = run_maint("job.run", inventory, "--name", "tag")
    assert (code, only(report)["details"]["rows"]) == (0, FINISHED), report
    assert statuses(prod_cluster, jobs_table)["it's done'); DROP TABLE jobs; --"] == FINISHED


def test_statement_timeout_and_lock_timeout_really_fire(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """pg_sleep past statement_timeout is cancelled; an UPDATE waiting on a lock held by another
    session gives up at lock_timeout; both roll back and fail the host within a second or two."""
    jobs = (
        {"name": "slow", "sql": "SELECT pg_sleep(30)", "statement_timeout": "0.3s"},
        {"name": "blocked", "sql": RESET_STUCK, "lock_timeout": "0.3s"},
    )
    inventory = sql_inventory(tmp_path, prod_cluster, jobs_table, *jobs)
    started = time.monotonic()
    code, report, _ = run_maint("job.run", inventory, "--name", "slow")
    assert time.monotonic() - started < 10
    assert (code, only(report)["status"]) == (1, "failed"), report
    assert only(report)["error"] == "cancelled by statement_timeout (0.3 seconds): rolled back"

    with prod_cluster.connect(jobs_table, autocommit=False) as holder:
        holder.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        code, report, _ = run_maint("job.run", inventory, "--name", "blocked")
        waited = time.monotonic() - started
        holder.rollback()
    assert waited < 10
    assert (code, only(report)["status"]) == (1, "failed"), report
    assert only(report)["error"] == (
        "a lock was not granted within lock_timeout (0.3 seconds): rolled back"
    )
    assert statuses(prod_cluster, jobs_table) == BEFORE


def test_a_connection_lost_mid_statement_fails_the_host_with_the_servers_words(
    prod_cluster, jobs_table: str, tmp_path: Path
) -> None:
    """A session terminated while the job runs: the host fails saying so, nothing crashes."""
    job = {"name": "cut", "sql": "SELECT pg_terminate_backend(pg_backend_pid())"}
    inventory = sql_inventory(tmp_path, prod_cluster, jobs_table, job)
    code, report, _ = run_maint("job.run", inventory, "--name", "cut")
    assert (code, only(report)["status"]) == (1, "failed"), report
    assert "terminat" in only(report)["error"] and "internal error" not in only(report)["error"]


def test_sql_job_reaches_a_server_behind_the_hosts_ssh_tunnel(
    prod_cluster, jobs_table: str, ssh_fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With postgres.ssh_tunnel the job goes through the host's SSH connection: it works while
    this machine's direct connections are sent nowhere (PGHOSTADDR)."""
    node = ssh_fleet.hosts[0]
    postgres = {"dsn": prod_cluster.dsn(jobs_table), "ssh_tunnel": True}
    job = {"name": "fail-stuck-jobs", "sql": RESET_STUCK}
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {node.name: {**node.inventory_vars(), "postgres": postgres, "jobs": [job]}},
        all_vars=fleet_vars(ssh_fleet),
    )
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.9")  # nothing listens there
    code, report, _ = run_maint("job.run", inventory, "--name", "fail-stuck-jobs")
    assert (code, only(report)["details"]["rows"]) == (0, STUCK), report
    monkeypatch.delenv("PGHOSTADDR")
    assert statuses(prod_cluster, jobs_table)["failed"] == STUCK


def test_command_jobs_run_on_local_and_ssh_hosts_and_fail_on_a_non_zero_exit(
    ssh_fleet, tmp_path: Path
) -> None:
    """One name, three hosts: it succeeds on the local host, exits 4 on the SSH host (which
    fails, with its exit code and stderr), and a host without the job is skipped."""
    node = ssh_fleet.hosts[1]
    marker = tmp_path / "ran-here"
    hosts = {
        "local": {"ansible_connection": "local", "jobs": [
            {"name": "purge-dlq", "command": f"echo purged 12 messages; touch {marker}"}]},
        node.name: {**node.inventory_vars(), "jobs": [
            {"name": "purge-dlq", "command": "echo on $(whoami); echo queue not found >&2; exit 4",
             "timeout": "30s"}]},
        "bystander": {"ansible_connection": "local"},
    }  # fmt: skip
    inventory = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    code, report, _ = run_maint("job.run", inventory, "--name", "purge-dlq", "--dry-run")
    assert code == 0 and not marker.exists(), report
    assert [r["status"] for r in report["results"]] == ["ok", "ok", "skipped"]
    assert report["results"][0]["summary"] == f"would run: echo purged 12 messages; touch {marker}"

    code, report, _ = run_maint("job.run", inventory, "--name", "purge-dlq")
    local, remote, bystander = report["results"]
    assert code == 1 and marker.exists(), report
    assert (local["status"], local["details"]["exit_code"]) == ("changed", 0)
    assert local["summary"] == "exited 0: purged 12 messages"
    assert (remote["status"], remote["details"]["exit_code"]) == ("failed", 4)
    assert remote["details"]["stdout_tail"] == f"on {node.user}\n"
    assert remote["error"] == "exited 4: queue not found"
    assert (bystander["status"], bystander["summary"]) == (
        "skipped", "no job 'purge-dlq' on this host"
    )  # fmt: skip


def test_a_command_past_its_timeout_is_stopped_and_fails_the_host(tmp_path: Path) -> None:
    """timeout 0.5s against `sleep 30`: stopped within seconds, the host failed saying so."""
    job = {"name": "hang", "command": "sleep 30", "timeout": "0.5s"}
    inventory = write_inventory(
        tmp_path / "inv.yaml", {"local": {"ansible_connection": "local", "jobs": [job]}}
    )
    started = time.monotonic()
    code, report, _ = run_maint("job.run", inventory, "--name", "hang")
    assert time.monotonic() - started < 10
    assert (code, only(report)["status"]) == (1, "failed"), report
    assert "timed out after 0.5s" in only(report)["error"]


def test_a_name_no_selected_host_defines_is_refused_before_any_host_runs(tmp_path: Path) -> None:
    """A typo exits 2 with a did-you-mean and runs nothing; so does a job outside --limit."""
    marker = tmp_path / "ran"
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local",
                 "jobs": [{"name": "fail-stuck-jobs", "command": f"touch {marker}"}]},
         "db2": {"ansible_connection": "local"}},
    )  # fmt: skip
    done = run_maint_text("job.run", inventory, "--name", "fail-stuk-jobs")
    assert done.returncode == 2 and not done.stdout, done
    assert (
        "error: --name: no job 'fail-stuk-jobs' on db1, db2; did you mean 'fail-stuck-jobs'?"
        in (done.stderr)
    )
    done = run_maint_text("job.run", inventory, "--name", "fail-stuck-jobs", "--limit", "db2")
    assert done.returncode == 2 and "no job 'fail-stuck-jobs' on db2" in done.stderr, done
    done = run_maint_text("job.run", inventory)
    assert done.returncode == 2 and "--name is required" in done.stderr, done
    assert not marker.exists()


def test_a_scheduled_job_run_is_checked_against_the_hosts_it_targets(tmp_path: Path) -> None:
    """schedule args {name: ...} load when a targeted host defines the job; a typo, or a name
    only hosts outside the entry's limit define, is refused at load naming the entry."""
    hosts = {
        "db1": {"ansible_connection": "local",
                "jobs": [{"name": "fail-stuck-jobs", "command": "true"}]},
        "db2": {"ansible_connection": "local"},
    }  # fmt: skip
    good = {"task": "job.run", "args": {"name": "fail-stuck-jobs"}, "every": "15min"}
    catalog = catalog_from(build_namespace())
    path = write_inventory(tmp_path / "good.yaml", hosts, all_vars={"schedule": [good]})
    [job] = load_settings(path, catalog).jobs
    assert (job.task, job.args) == ("job.run", ("--name", "fail-stuck-jobs"))

    bad = [
        {**good, "args": {"name": "fail-stuk-jobs"}},
        {**good, "limit": "db2", "name": "on-db2"},
    ]
    path = write_inventory(tmp_path / "bad.yaml", hosts, all_vars={"schedule": bad})
    with pytest.raises(ConfigError) as refused:
        load_settings(path, catalog)
    said = str(refused.value)
    assert (
        "group 'all': schedule[0].args.name: no job 'fail-stuk-jobs' on db1, db2; "
        "did you mean 'fail-stuck-jobs'?"
    ) in said
    assert "schedule[1].args.name: no job 'fail-stuck-jobs' on db2: they define no jobs" in said


# --- broken `jobs` entries, refused at load -------------------------------------------------

SQL = {"name": "reset", "sql": "UPDATE jobs SET status = 'failed'"}
COMMAND = {"name": "purge", "command": "true"}
BROKEN = [
    ("key-typo", [{**SQL, "max_row": 10}], "jobs[0].max_row: unknown key 'max_row'; "
     "did you mean 'max_rows'?"),
    ("section-typo", None, "job: unknown key; did you mean 'jobs'?"),
    ("not-a-list", SQL, "jobs: expected a list, got a mapping"),
    ("neither", [{"name": "x"}], "jobs[0]: a job needs sql (a statement) or command"),
    ("both", [{**SQL, "command": "true"}], "jobs[0]: a job has sql or command, not both"),
    ("name-missing", [{"sql": "SELECT 1"}], "jobs[0].name: required key is missing"),
    ("name-unsafe", [{**SQL, "name": "Reset Stuck"}], "jobs[0].name: expected a job name"),
    ("name-twice", [SQL, {**COMMAND, "name": "reset"}],
     "jobs: name 'reset' is given twice (jobs[0] and jobs[1])"),
    ("max-rows-zero", [{**SQL, "max_rows": 0}], "jobs[0].max_rows: expected at least 1, got 0"),
    ("max-rows-bool", [{**SQL, "max_rows": True}],
     "jobs[0].max_rows: expected a number, got true (a yes/no value)"),
    ("max-rows-absurd", [{**SQL, "max_rows": 10**12}],
     "jobs[0].max_rows: expected at most 1000000000"),
    ("timeout-unit", [{**SQL, "statement_timeout": "5 parsecs"}],
     "jobs[0].statement_timeout: unknown unit 'parsecs'"),
    ("timeout-absurd", [{**SQL, "lock_timeout": "100d"}],
     "jobs[0].lock_timeout: too long for PostgreSQL"),
    ("timeout-negative", [{**COMMAND, "timeout": -5}],
     "jobs[0].timeout: a duration cannot be negative, got -5"),
    ("sql-key-on-command", [{**COMMAND, "max_rows": 5}],
     "jobs[0]: max_rows is only for an sql job"),
    ("command-key-on-sql", [{**SQL, "timeout": "1min"}],
     "jobs[0]: timeout is only for a command job"),
    ("placeholder-without-value", [{**SQL, "sql": "DELETE FROM jobs WHERE id = %(id)s"}],
     "jobs[0]: sql: %(id)s has no value in parameters"),
    ("value-without-placeholder", [{**SQL, "parameters": {"status": "failed"}}],
     "jobs[0]: parameters.status: the sql has no %(status)s"),
    ("lone-percent", [{**SQL, "sql": "DELETE FROM jobs WHERE status LIKE 'fail%'"}],
     "jobs[0]: sql: a literal % is written %%"),
    ("parameter-mapping", [{**SQL, "sql": "SELECT %(x)s", "parameters": {"x": {"a": 1}}}],
     "jobs[0].parameters.x: expected text, a number, true/false, a date, null or a list"),
    ("empty-command", [{**COMMAND, "command": " "}], "jobs[0].command: must not be empty"),
    ("sql-not-text", [{**SQL, "sql": 42}], "jobs[0].sql: expected text, got 42"),
    ("database-list", [{**SQL, "database": ["app"]}],
     "jobs[0].database: expected text, got a list"),
    ("timeout-bool", [{**COMMAND, "timeout": True}],
     "jobs[0].timeout: expected a number of seconds or a duration like 30s, got true"),
]  # fmt: skip


@pytest.mark.parametrize(("jobs", "says"), [case[1:] for case in BROKEN],
                         ids=[case[0] for case in BROKEN])  # fmt: skip
def test_broken_jobs_are_refused_at_load_naming_file_host_and_key(
    tmp_path: Path, jobs: Any, says: str
) -> None:
    host: dict[str, Any] = {"ansible_connection": "local"}
    host.update({"job": [SQL]} if jobs is None else {"jobs": jobs})
    path = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    with pytest.raises(ConfigError) as refused:
        load_inventory(path)
    assert f"{path}: host 'db1': {says}" in str(refused.value)


def test_job_run_refuses_a_broken_job_before_touching_any_host(tmp_path: Path) -> None:
    """Through the real `maint` command: exit 2, file, host and key path said, nothing run,
    though the other host's job is fine."""
    marker = tmp_path / "ran"
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local", "jobs": [{"name": "x", "comand": "true"}]},
         "db2": {"ansible_connection": "local",
                 "jobs": [{"name": "x", "command": f"touch {marker}"}]}},
    )  # fmt: skip
    done = run_maint_text("job.run", inventory, "--name", "x", process=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done
    assert (
        f"{inventory}: host 'db1': jobs[0].comand: unknown key 'comand'; did you mean 'command'?"
    ) in done.stderr
    assert not marker.exists()


def test_an_sql_job_on_a_host_without_a_dsn_is_refused_before_any_host_runs(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local", "jobs": [{**SQL, "name": "x"}]},
         "db2": {"ansible_connection": "local",
                 "jobs": [{"name": "x", "command": f"touch {marker}"}]}},
    )  # fmt: skip
    done = run_maint_text("job.run", inventory, "--name", "x")
    assert done.returncode == 2 and "host 'db1': key 'postgres.dsn' is not set" in done.stderr
    assert not marker.exists()
