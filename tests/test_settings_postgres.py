"""The `postgres` section: refused when broken by every task reading it, used when right.

Broken inventories go through the real `maint` command (tests/settings_cases.py says what a
refusal must look like); each task that reads the section appears in several cases, each case
in a representative few, to keep the file quick. The positive tests show valid values reach
the procedures: the databases, the timeouts, connect_timeout, bin_dir and the purge rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maintenance import pg
from maintenance.inventory import load_inventory
from maintenance.runners import LocalRunner
from tests.db_helpers import (
    by_object,
    create_table,
    db_inventory,
    run_maint,
    run_maint_text,
    scratch_database,
)
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli
from tests.settings_cases import Case, assert_refused

DB = ("db.vacuum", "db.analyze", "db.reindex", "db.bloat", "db.unused_indexes",
      "db.long_queries", "db.idle_connections", "db.purge")  # fmt: skip
CONNECTING = ("backup.db", "backup.globals", "health.check", "restore.verify", "restore.db")
EVERY = DB + CONNECTING
DSN = "postgresql://maint@db1.example.com/app"


def _pg(**values) -> dict:
    return {"postgres": {"dsn": DSN, **values}}


def _maint(**values) -> dict:
    return _pg(maintenance=values)


def _rule(**values) -> dict:
    return _maint(purge=[{"table": "events", "column": "created_at", "older_than": "90d",
                          **values}])  # fmt: skip


CASES = [
    Case("dsn-typo", {"postgres": {"dns": DSN}},
         "postgres.dns: unknown key 'dns'; did you mean 'dsn'?",
         ("db.vacuum", "backup.db", "health.check", "restore.verify")),
    Case("tunnel-typo", _pg(ssh_tunell=True),
         "postgres.ssh_tunell: unknown key 'ssh_tunell'; did you mean 'ssh_tunnel'?",
         ("db.analyze", "backup.globals", "restore.db")),
    Case("section-typo", {"postgre": {"dsn": DSN}},
         "postgre: unknown key; did you mean 'postgres'?",
         ("db.bloat", "backup.db", "health.check")),
    Case("maintenance-typo", _pg(maintenace={"lock_timeout": "5s"}),
         "postgres.maintenace: unknown key 'maintenace'; did you mean 'maintenance'?",
         ("db.reindex", "db.unused_indexes")),
    Case("knob-typo", _maint(lock_timout="5s"),
         "maintenance.lock_timout: unknown key 'lock_timout'; did you mean 'lock_timeout'?",
         ("db.vacuum", "db.long_queries", "backup.db")),
    Case("rule-typo", _rule(shema="audit"),
         "postgres.maintenance.purge[0].shema: unknown key 'shema'; did you mean 'schema'?",
         ("db.purge", "db.idle_connections")),
    Case("databases-string", _pg(databases="small"),
         "postgres.databases: expected a list of database names, got the string 'small'",
         ("db.vacuum", "db.bloat", "backup.db", "health.check")),
    Case("databases-empty-name", _pg(databases=["app", ""]),
         "postgres.databases[1]: must not be empty", ("db.analyze", "backup.db")),
    Case("connect-timeout-text", _pg(connect_timeout="ten"),
         "postgres.connect_timeout: expected a duration like",
         ("db.idle_connections", "backup.globals", "health.check", "restore.verify")),
    Case("connect-timeout-negative", _pg(connect_timeout=-5),
         "postgres.connect_timeout: a duration cannot be negative, got -5",
         ("db.long_queries", "backup.db", "restore.db")),
    Case("connect-timeout-bool", _pg(connect_timeout=True),
         "postgres.connect_timeout: expected a number of seconds or a duration like 30s, "
         "got true (a yes/no value)",
         ("db.reindex", "health.check")),
    Case("tunnel-not-bool", _pg(ssh_tunnel="maybe"), "postgres.ssh_tunnel: expected true or false",
         ("db.unused_indexes", "backup.db", "health.check", "restore.verify")),
    Case("tunnel-without-dsn", {"postgres": {"ssh_tunnel": True}},
         "postgres: ssh_tunnel needs dsn", ("db.vacuum", "backup.globals", "health.check")),
    Case("tunnel-several-hosts", _pg(ssh_tunnel=True, dsn="host=a,b dbname=app"),
         "postgres: ssh_tunnel: a dsn naming several servers cannot go through one tunnel",
         ("db.bloat", "backup.db", "restore.verify")),
    Case("dsn-nonsense", _pg(dsn="host=db1 password=s3cret-pw nonsense"),
         "postgres.dsn: not a valid libpq connection string or URI",
         ("db.analyze", "health.check", "backup.globals")),
    Case("postgres-list", {"postgres": [DSN]}, "postgres: expected a mapping of keys, got a list",
         ("db.purge", "backup.db", "health.check")),
    Case("ratio-range", _maint(vacuum_dead_ratio=1.5),
         "postgres.maintenance.vacuum_dead_ratio: expected at most 1", ("db.vacuum",)),
    Case("ratio-bool", _maint(reindex_bloat_ratio=True),
         "postgres.maintenance.reindex_bloat_ratio: expected a number, got true (a yes/no value)",
         ("db.reindex",)),
    Case("count-negative", _maint(analyze_min_modifications=-1),
         "postgres.maintenance.analyze_min_modifications: expected at least 0, got -1",
         ("db.analyze",)),
    Case("batch-zero", _maint(purge_batch=0),
         "postgres.maintenance.purge_batch: expected at least 1, got 0", ("db.purge",)),
    Case("size-text", _maint(reindex_min_size="big"),
         "postgres.maintenance.reindex_min_size: expected a size", ("db.reindex",)),
    Case("query-age-text", _maint(long_query_age="soon"),
         "postgres.maintenance.long_query_age: expected a duration like",
         ("db.long_queries", "db.idle_connections"), on_group=True),
    Case("timeouts-contradict", _maint(lock_timeout="10min", statement_timeout="1min"),
         "postgres.maintenance: lock_timeout (10 minutes) must not exceed statement_timeout "
         "(1 minute)", ("db.vacuum", "db.purge")),
    Case("lock-timeout-past-int4-ms", _maint(lock_timeout="30d", statement_timeout=0),
         "postgres.maintenance.lock_timeout: too long for PostgreSQL: at most 24 days 20 hours "
         "31 minutes 23 seconds (2147483647 ms; 0 means no limit), got 30 days",
         ("db.vacuum", "db.purge")),
    Case("statement-timeout-past-int4-ms", _maint(statement_timeout="1y"),
         "postgres.maintenance.statement_timeout: too long for PostgreSQL", ("db.reindex",),
         on_group=True),
    Case("connect-timeout-absurd", _pg(connect_timeout="99999999999y"),
         "postgres.connect_timeout: too long: at most 1000 years", ("db.analyze", "backup.db")),
    Case("dsn-port-not-a-number", _pg(dsn="postgresql://u@db1:notaport/app"),
         "postgres.dsn: the port must be a number from 1 to 65535",
         ("db.vacuum", "backup.db", "health.check")),
    Case("dsn-port-keyword", _pg(dsn="host=db1 port=abc dbname=app"),
         "postgres.dsn: the port must be a number from 1 to 65535", ("db.bloat", "restore.verify")),
    Case("dsn-port-out-of-range", _pg(dsn="host=db1,db2 port=5432,70000"),
         "postgres.dsn: the port must be a number from 1 to 65535", ("db.analyze",)),
    Case("older-than-m", _rule(older_than="12m"),
         "postgres.maintenance.purge[0].older_than: ambiguous: write 12min or 12mo", ("db.purge",)),
    Case("older-than-bare", _rule(older_than=90),
         "postgres.maintenance.purge[0].older_than: ambiguous: write 90min or 90mo", ("db.purge",),
         on_group=True),
    Case("purge-mapping", _maint(purge={"table": "events"}),
         "postgres.maintenance.purge: expected a list", ("db.purge",)),
    Case("rule-missing-column", _maint(purge=[{"table": "events", "older_than": "90d"}]),
         "postgres.maintenance.purge[0].column: required key is missing", ("db.purge",)),
    Case("rule-batch-bool", _rule(batch=True),
         "postgres.maintenance.purge[0].batch: expected a number, got true (a yes/no value)",
         ("db.purge",)),
]  # fmt: skip


def test_every_task_reading_postgres_appears_in_some_case() -> None:
    covered = {task for case in CASES for task in case.tasks}
    assert covered == set(EVERY)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_postgres_setting_is_refused_by_every_task_reading_it(
    tmp_path: Path, case: Case
) -> None:
    """Exit 2 (3 for health.check), host or group and key path said, nothing written."""

    for task in case.tasks:
        where = tmp_path / task
        where.mkdir()
        done = assert_refused(where, case, task)
        assert "s3cret-pw" not in done.stderr + done.stdout  # a DSN's password is never said


def test_a_task_needing_a_dsn_says_so(tmp_path: Path) -> None:
    """No postgres.dsn is valid settings, but a task that connects exits 2 naming the key."""
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": {"ansible_connection": "local"}})
    for task in ("db.vacuum", "db.purge"):
        done = run_maint_cli([task, "-i", str(inventory)])
        assert done.returncode == 2, done.stderr
        assert "host 'db1': key 'postgres.dsn' is not set" in done.stderr


# --- valid settings reach the procedures --------------------------------------------------------


def test_databases_and_timeouts_reach_the_db_tasks(prod_cluster, tmp_path: Path) -> None:
    """postgres.databases picks the databases; lock/statement timeouts are set on the session;
    a flag overrides its key; the knobs decide which tables are vacuumed."""
    with scratch_database(prod_cluster) as first, scratch_database(prod_cluster) as second:
        for database in (first, second):
            create_table(prod_cluster, database, "t", 100)
        inventory = db_inventory(
            tmp_path / "inv.yaml", prod_cluster, [first, second],
            lock_timeout="2s", statement_timeout="90min", vacuum_dead_tuples=0,
            vacuum_min_dead_tuples=0,
        )  # fmt: skip
        done = run_maint_text("db.vacuum", inventory, "--dry-run")
        assert done.returncode == 0, done.stderr
        assert f"-- db1, database {first}" in done.stdout
        assert f"-- db1, database {second}" in done.stdout
        assert "set_config('lock_timeout', '2000ms', false)" in done.stdout
        assert "set_config('statement_timeout', '5400000ms', false)" in done.stdout
        flagged = run_maint_text("db.vacuum", inventory, "--dry-run", "--lock-timeout", "1min")
        assert "set_config('lock_timeout', '60000ms', false)" in flagged.stdout


def test_connect_timeout_and_application_name_reach_every_connection(
    prod_cluster, tmp_path: Path
) -> None:
    """pg.reach hands libpq the host's connect_timeout (rounded up to whole seconds), from
    this machine and in the conninfo of client tools on the host; the password stays out."""
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local",
                 "postgres": {"dsn": prod_cluster.dsn(), "connect_timeout": "2.5s"}}},
    )  # fmt: skip
    host = load_inventory(inventory).hosts["db1"]
    with pg.reach(host, LocalRunner(host), "backup.db") as server:
        with server.connect() as connection:
            parameters = connection.info.get_parameters()
            assert parameters["connect_timeout"] == "3"
            assert parameters["application_name"] == "maint backup.db"
        conninfo, env = server.client("postgres")
    assert "connect_timeout=3" in conninfo and prod_cluster.password not in conninfo
    assert env == {"PGPASSWORD": prod_cluster.password}


def test_bin_dir_reaches_the_client_lookup(prod_cluster, tmp_path: Path) -> None:
    """backup.db looks for pg_dump only in postgres.bin_dir when it is set."""
    postgres = {"dsn": prod_cluster.dsn(), "databases": ["postgres"], "bin_dir": "/nonexistent"}
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"db1": {"ansible_connection": "local", "postgres": postgres,
                 "backup": {"store": str(tmp_path / "store")}}},
    )  # fmt: skip
    code, report, _ = run_maint("backup.db", inventory)
    assert code == 1
    assert "set postgres.bin_dir" in report["results"][0]["error"]


def test_purge_rules_and_batch_from_vars_reach_db_purge(prod_cluster, tmp_path: Path) -> None:
    """A rule's batch and older_than from the vars decide the plan of a dry run."""
    with scratch_database(prod_cluster) as database:
        create_table(prod_cluster, database, "t", 300)  # one row a minute, the last 300 min
        rules = [{"database": database, "table": "t", "column": "created", "older_than": "2h",
                  "batch": 7}]  # fmt: skip
        inventory = db_inventory(tmp_path / "inv.yaml", prod_cluster, [database], purge=rules)
        code, report, _ = run_maint("db.purge", inventory, "--dry-run")
        assert code == 0, report
        row = by_object(report)["public.t"]
        assert (row["batch"], row["older_than"], row["older_than_words"]) == (7, "2h", "2 hours")
        assert 175 <= row["rows_to_delete"] <= 181 and row["rows_total"] == 300
