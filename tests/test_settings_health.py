"""Broken `health` and `certs` settings through the real `maint`, and good ones.

Each broken inventory goes through the task that reads the section (health.check or
certs.check) and must be refused before any host is touched: exit 3 (UNKNOWN, as monitoring
expects of a bad configuration), the host or group and the key path, no traceback, nothing
written. Flags are typed by the same model as the keys they override.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from maintenance.monitoring import State, grade_high, grade_low
from tests.harness.tls import Pki, TlsServer
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli
from tests.settings_cases import Case, assert_refused

HEALTH = ("health.check",)
CERTS = ("certs.check",)


def health(**keys: object) -> dict[str, object]:
    return {"health": keys}


CASES = [
    # health: read by health.check
    Case("health-typo", health(disk_warn_free_pc=10),
         "health.disk_warn_free_pc: unknown key 'disk_warn_free_pc'; did you mean "
         "'disk_warn_free_pct'?", HEALTH),
    Case("health-top-level-typo", {"helth": {"disk_warn_free_pct": 10}},
         "helth: unknown key; did you mean 'health'?", HEALTH),
    Case("health-twenty", health(disk_warn_free_pct="twenty"),
         "health.disk_warn_free_pct: expected a number, got 'twenty'", HEALTH),
    Case("health-pct-bool", health(connections_warn_pct=True),
         "health.connections_warn_pct: expected a number, got true (a yes/no value)", HEALTH),
    Case("health-pct-negative", health(disk_crit_free_pct=-5),
         "health.disk_crit_free_pct: expected at least 0, got -5", HEALTH, on_group=True),
    Case("health-pct-over-100", health(connections_crit_pct=150),
         "health.connections_crit_pct: expected at most 100, got 150", HEALTH),
    Case("health-disk-crit-looser", health(disk_warn_free_pct=10, disk_crit_free_pct=20),
         "health: disk_crit_free_pct (20) is above disk_warn_free_pct (10)", HEALTH),
    Case("health-connections-crit-looser", health(connections_warn_pct=90, connections_crit_pct=80),
         "health: connections_crit_pct (80) is below connections_warn_pct (90)", HEALTH,
         on_group=True),
    Case("health-count-crit-looser", health(long_query_warn=5, long_query_crit=2),
         "long_query_crit (2) is below long_query_warn (5)", HEALTH),
    Case("health-age-crit-looser", health(backup_warn_age="2d", backup_crit_age="1d"),
         "backup_crit_age (1 day) is below backup_warn_age (2 days)", HEALTH),
    Case("health-bad-duration", health(long_query_seconds="ten"),
         "health.long_query_seconds: expected a duration like 30s", HEALTH),
    Case("health-negative-duration", health(idle_in_transaction_seconds=-5),
         "health.idle_in_transaction_seconds: a duration cannot be negative", HEALTH),
    Case("health-count-fraction", health(idle_in_transaction_crit=2.5),
         "health.idle_in_transaction_crit: expected a whole number, got 2.5", HEALTH),
    Case("health-not-a-mapping", {"health": "strict"},
         "health: expected a mapping of keys, got the string 'strict'", HEALTH),
    Case("health-paths-mapping", health(disk_paths={"/": 10}),
         "health.disk_paths: expected a list, got a mapping", HEALTH),
    Case("health-no-paths", health(disk_paths=[]),
         "health.disk_paths: expected at least 1 item", HEALTH),
    Case("health-absurd-age", health(long_query_seconds="99999999999y"),
         "health.long_query_seconds: too long: at most 1000 years", HEALTH),
    Case("health-empty-path", health(disk_paths=["/", " "]),
         "health.disk_paths[1]: must not be empty", HEALTH),
    # certs: read by certs.check
    Case("certs-typo", {"certs": {"warn_day": 10}},
         "certs.warn_day: unknown key 'warn_day'; did you mean 'warn_days'?", CERTS),
    Case("certs-target-typo-list-form", {"certs": [{"endpoint": "db:443", "server_nme": "db"}]},
         "certs[0].server_nme: unknown key 'server_nme'; did you mean 'server_name'?", CERTS),
    Case("certs-target-typo-mapping-form", {"certs": {"targets": [{"fil": "/a.pem"}]}},
         "certs.targets[0].fil: unknown key 'fil'; did you mean 'file'?", CERTS, on_group=True),
    Case("certs-targets-string", {"certs": {"targets": "db:443"}},
         "certs.targets: expected a list, got the string 'db:443'", CERTS),
    Case("certs-string", {"certs": "db:443"},
         "certs: expected a list of targets or a mapping with settings and targets, got 'db:443'",
         CERTS),
    Case("certs-crit-above-warn", {"certs": {"warn_days": 5, "crit_days": 10}},
         "certs: crit_days (10) is above warn_days (5)", CERTS, on_group=True),
    Case("certs-target-crit-above-host-warn", {"certs": [{"file": "/a.pem", "crit_days": 40}]},
         "certs[0]: crit_days (40) is above warn_days (30)", CERTS),
    Case("certs-days-bool", {"certs": {"warn_days": True}},
         "certs.warn_days: expected a number, got true (a yes/no value)", CERTS),
    Case("certs-days-negative", {"certs": [{"file": "/a.pem", "warn_days": -1}]},
         "certs[0].warn_days: expected at least 0, got -1", CERTS),
    Case("certs-no-port", {"certs": [{"endpoint": "db.example.com"}]},
         "certs[0].endpoint: expected host:port, got 'db.example.com'", CERTS),
    Case("certs-relative-file", {"certs": [{"file": "app.pem"}]},
         "certs[0].file: expected an absolute path, got 'app.pem'", CERTS),
    Case("certs-starttls", {"certs": [{"endpoint": "db:25", "starttls": "imap"}]},
         "certs[0].starttls: expected one of 'none', 'postgres' or 'smtp'", CERTS),
    Case("certs-both-kinds", {"certs": [{"endpoint": "db:443", "file": "/a.pem"}]},
         "certs[0]: expected either 'endpoint' or 'file'", CERTS),
    Case("certs-starttls-on-file", {"certs": [{"file": "/a.pem", "starttls": "smtp"}]},
         "certs[0]: 'starttls' applies to endpoints only", CERTS),
    Case("certs-timeout-zero", {"certs": {"timeout": 0}},
         "certs.timeout: expected more than 0", CERTS),
    Case("certs-timeout-words", {"certs": {"timeout": "soon"}},
         "certs.timeout: expected a duration like 30s", CERTS),
    Case("certs-postgres-maybe", {"certs": {"postgres": "maybe"}},
         "certs.postgres: expected true or false, got the string 'maybe'", CERTS),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_setting_is_refused_by_every_task_reading_it(tmp_path: Path, case: Case) -> None:
    """Exit 3, host or group and key path said, no traceback, nothing written."""
    for task in case.tasks:
        where = tmp_path / task
        where.mkdir()
        assert_refused(where, case, task)


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli(list(args))
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def checks_by_name(document: dict) -> dict[str, dict]:
    return {check["name"]: check for check in document["results"][0]["details"]["checks"]}


# --- health: good settings against a real server -------------------------------------------


def test_query_ages_take_durations_and_flags_override_them(prod_cluster, tmp_path: Path) -> None:
    """`10m` is ten minutes (never sent to the server as text); the flag wins over the var; a
    single disk path is still a list of one."""
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {
            "db": {
                "ansible_connection": "local",
                "postgres": {"dsn": prod_cluster.dsn()},
                "health": {
                    "disk_paths": str(tmp_path),
                    "disk_warn_free_pct": 0,
                    "disk_crit_free_pct": 0,
                    "long_query_seconds": "10m",
                    "idle_in_transaction_seconds": "1h30min",
                },
            }
        },
    )
    code, document, stderr = maint("health.check", "-i", str(inventory), "--json")
    assert code == 0, stderr
    checks = checks_by_name(document)
    assert checks["postgres long queries"]["message"] == "0 running longer than 600s"
    assert checks["postgres idle in transaction"]["message"] == ("0 idle in transaction over 5400s")
    assert f"disk {tmp_path}" in checks

    code, document, stderr = maint(
        "health.check", "-i", str(inventory), "--json", "--long-query-seconds", "2min"
    )
    assert code == 0, stderr
    assert checks_by_name(document)["postgres long queries"]["message"] == (
        "0 running longer than 120s"
    )


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        # A value its key's type refuses whatever the host: refused as the flag, before any host.
        (["--long-query-seconds", "ten"], "error: --long-query-seconds: expected a duration "
         "like 30s"),
        (["--disk-path", ""], "host 'h': health.disk_paths[0] (with the command-line values): "
         "must not be empty"),
    ],
)  # fmt: skip
def test_bad_health_flag_is_unknown_before_anything_runs(
    tmp_path: Path, flag: list[str], says: str
) -> None:
    inventory = write_inventory(tmp_path / "inv.yaml", {"h": {"ansible_connection": "local"}})
    code, document, stderr = maint("health.check", "-i", str(inventory), "--json", *flag)
    assert (code, document) == (3, {}), stderr
    assert says in stderr
    assert "Traceback" not in stderr


# --- certs: good settings against a real TLS server -----------------------------------------


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def endpoint(pki: Pki, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A TLS server whose certificate has 20 days left, and the CA file that trusts it."""
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(pki.root_pem())
    server = TlsServer(pki.leaf("localhost", days_left=20), tmp_path, "none")
    try:
        yield server.endpoint, ca_file
    finally:
        server.stop()


def certs_inventory(tmp_path: Path, certs: object) -> Path:
    return write_inventory(
        tmp_path / "inv.yaml", {"ctl": {"ansible_connection": "local", "certs": certs}}
    )


def test_certs_mapping_form_with_duration_timeout_and_flags(
    endpoint: tuple[str, Path], tmp_path: Path
) -> None:
    """20 days left: OK under warn_days 10 (timeout written as a duration); WARNING with
    --warn-days 25, whose value replaces the target's own warn_days too."""
    address, ca_file = endpoint
    target = {"endpoint": address, "server_name": "localhost", "ca_file": str(ca_file)}
    certs = {"warn_days": 10, "crit_days": 3, "timeout": "5s", "targets": [target]}
    inventory = certs_inventory(tmp_path, certs)

    code, document, stderr = maint("certs.check", "-i", str(inventory), "--json")
    assert code == 0, stderr
    (report,) = document["results"][0]["details"]["targets"]
    assert (report["warn_days"], report["crit_days"], report["state"]) == (10, 3, "OK")

    certs["targets"] = [{**target, "warn_days": 12}]
    inventory = certs_inventory(tmp_path, certs)
    code, document, stderr = maint(
        "certs.check", "-i", str(inventory), "--json", "--warn-days", "25"
    )
    assert code == 1, stderr
    (report,) = document["results"][0]["details"]["targets"]
    assert (report["warn_days"], report["state"]) == (25, "WARNING")


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--crit-days", "40"], "host 'ctl': certs (with the command-line values): crit_days "
         "(40) is above warn_days (30)"),
        # Refused as the flag whatever the host: before any host, and in a schedule's args.
        (["--warn-days", "soon"], "error: --warn-days: expected a number, got 'soon'"),
    ],
)  # fmt: skip
def test_bad_certs_flag_is_unknown_before_anything_runs(
    endpoint: tuple[str, Path], tmp_path: Path, flags: list[str], says: str
) -> None:
    inventory = certs_inventory(tmp_path, [{"endpoint": endpoint[0]}])
    code, document, stderr = maint("certs.check", "-i", str(inventory), "--json", *flags)
    assert (code, document) == (3, {}), stderr
    assert says in stderr
    assert "Traceback" not in stderr


def test_missing_ca_file_of_an_endpoint_is_unknown_before_anything_runs(tmp_path: Path) -> None:
    """The CA file is read on this machine: its absence is said at once, not per target."""
    inventory = certs_inventory(tmp_path, [{"endpoint": "127.0.0.1:9", "ca_file": "/no/ca.pem"}])
    code, document, stderr = maint("certs.check", "-i", str(inventory), "--json")
    assert (code, document) == (3, {}), stderr
    assert "host 'ctl': certs: ca_file /no/ca.pem of endpoint" in stderr
    assert "is not a file on this machine" in stderr and "Traceback" not in stderr


def test_one_grading_for_both_checks() -> None:
    """A value exactly at a threshold takes that threshold's state, both ways."""
    assert [grade_low(v, warn=20, crit=10) for v in (21, 20, 11, 10)] == [
        State.OK, State.WARNING, State.WARNING, State.CRITICAL
    ]  # fmt: skip
    assert [grade_high(v, warn=1, crit=5) for v in (0, 1, 4, 5)] == [
        State.OK, State.WARNING, State.WARNING, State.CRITICAL
    ]  # fmt: skip
