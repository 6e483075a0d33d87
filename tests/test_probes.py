"""health.check's probes (health.probes) against real servers on loopback: an HTTP(S) server,
a TCP listener and a closed port, the prod PostgreSQL cluster, commands here and on an SSH
host. Each kind reaches OK, WARNING and CRITICAL for real; a probe's failure stays its own
check; a header's secret is sent and never shown.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maintenance.executor import run_procedure
from maintenance.health import check_host
from maintenance.inventory import load_inventory
from tests.db_helpers import scratch_database
from tests.harness.tls import Pki
from tests.harness.web import WebServer
from tests.inventories import fleet_vars, write_inventory

QUIET_DISK = {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0}


@pytest.fixture(scope="module")
def web() -> Iterator[WebServer]:
    with WebServer() as server:
        yield server


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def health_of(
    tmp_path: Path, probes: list[dict[str, Any]], host: dict[str, Any] | None = None, **more: Any
) -> dict[str, dict[str, Any]]:
    """health.check of one host with PROBES, in-process as `maint health.check` runs it:
    its checks by name, and the host's own result under the key 'host'."""
    vars_ = host or {"ansible_connection": "local"}
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {**vars_, "health": {**QUIET_DISK, "probes": probes}}},
        all_vars=more.get("all_vars"),
    )
    (result,) = run_procedure("health.check", check_host, list(load_inventory(inventory)), None)
    checks = {check["name"]: check for check in result.details["checks"]}
    return {**checks, "host": {"state": result.details["state"], "status": result.status}}


def states(checks: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: check["state"] for name, check in checks.items() if name != "host"}


# --- http ---------------------------------------------------------------------------------


def test_http_probe_grades_status_json_body_and_latency(web: WebServer, tmp_path: Path) -> None:
    url = web.url
    probes = [
        {"name": "api", "http": f"{url}/health", "json": {"status": "healthy"}},
        {"name": "nested", "http": f"{url}/h", "json": {"checks.db.status": "healthy"}},
        {"name": "unhealthy", "http": f"{url}/h?status=unhealthy", "json": {"status": "healthy"}},
        {"name": "down", "http": f"{url}/health?code=503&status=down"},
        {"name": "down-expected", "http": f"{url}/h?code=503", "status": [200, 503]},
        {"name": "contains", "http": f"{url}/h", "contains": '"healthy"', "method": "get"},
        {"name": "lacks", "http": f"{url}/h?status=starting", "contains": "healthy"},
        {"name": "moved", "http": f"{url}/redirect"},
        {"name": "slow", "http": f"{url}/h?sleep_ms=300", "warn_ms": 200, "crit_ms": 5000},
        {"name": "slower", "http": f"{url}/h?sleep_ms=300", "warn_ms": 50, "crit_ms": 200},
        {"name": "stuck", "http": f"{url}/h?sleep_ms=3000", "timeout": 0.5},
        {"name": "trickles", "http": f"{url}/h?trickle_ms=100", "timeout": 0.5},
        {"name": "trickles-all", "http": f"{url}/h?trickle_ms=100&trickle=all", "timeout": 0.5},
        {"name": "head", "http": f"{url}/h", "method": "HEAD"},
    ]
    checks = health_of(tmp_path, probes)
    assert states(checks) == {
        "disk /": "OK",
        "api": "OK",
        "nested": "OK",
        "unhealthy": "CRITICAL",
        "down": "CRITICAL",
        "down-expected": "OK",
        "contains": "OK",
        "lacks": "CRITICAL",
        "moved": "CRITICAL",
        "slow": "WARNING",
        "slower": "CRITICAL",
        "stuck": "CRITICAL",
        "trickles": "CRITICAL",
        "trickles-all": "CRITICAL",
        "head": "OK",
    }
    assert checks["api"]["message"].startswith("200 OK in ")
    assert checks["unhealthy"]["message"] == (
        '200 OK: JSON status is "unhealthy", expected "healthy"'
    )
    assert checks["down"]["message"] == "503 Service Unavailable: expected a 2xx status"
    assert checks["lacks"]["message"] == "200 OK: the body does not contain 'healthy'"
    assert checks["moved"]["message"] == "302 Found: expected a 2xx status"  # not followed
    assert checks["stuck"]["message"] == f"{url}/h?sleep_ms=3000: timed out after 0.5s"
    # a body that trickles in: no read times out, the probe's own deadline does
    assert checks["trickles"]["message"] == f"{url}/h?trickle_ms=100: timed out after 0.5s"
    # headers that trickle in too: the probe is stuck in the library, its check is not
    assert checks["trickles-all"]["message"] == "no answer within the probe's timeout (0.5s)"
    slow = checks["slow"]
    assert 300 <= slow["value"] < 5000 and (slow["warn"], slow["crit"]) == (200, 5000)
    assert checks["host"]["state"] == "CRITICAL" and checks["host"]["status"].value == "failed"


def test_https_is_verified_unless_trusted_by_ca_file(tmp_path: Path) -> None:
    """A certificate from a private CA fails verification (CRITICAL) until `ca_file` names
    the CA; `verify_tls: false` skips verification."""
    pki = Pki()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki.root_pem())
    with WebServer(pki.leaf("127.0.0.1"), tmp_path) as server:
        probes = [
            {"name": "system-trust", "http": f"{server.url}/health"},
            {"name": "own-ca", "http": f"{server.url}/health", "ca_file": str(ca_file)},
            {"name": "unverified", "http": f"{server.url}/health", "verify_tls": False},
            {"name": "no-ca-file", "http": f"{server.url}/health", "ca_file": "/no/ca.pem"},
        ]
        checks = health_of(tmp_path, probes)
    assert states(checks) == {
        "disk /": "OK",
        "system-trust": "CRITICAL",
        "own-ca": "OK",
        "unverified": "OK",
        "no-ca-file": "UNKNOWN",  # the probe's own failure, while the others still report
    }
    assert (
        "TLS verification failed: unable to get local issuer certificate"
        in (checks["system-trust"]["message"])
    )
    assert "FileNotFoundError" in checks["no-ca-file"]["message"]


def test_header_from_environment_is_sent_and_never_shown(web: WebServer, tmp_path: Path) -> None:
    """Through the real `maint`: the token reaches the server; stdout and stderr (the log)
    never show it; without the variable the check is UNKNOWN and names the variable only."""
    token = "Bearer s3cr3t-probe-token"
    probe = {
        "name": "api",
        "http": f"{web.url}/secured?code=401&status=denied",
        "headers": {"Authorization": {"env": "PROBE_TOKEN"}, "X-Plain": "shown"},
    }
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {"ansible_connection": "local", "health": {**QUIET_DISK, "probes": [probe]}}},
    )
    env = {**os.environ, "PROBE_TOKEN": token}
    done, check = _maint_check(inventory, env, "api")
    assert done.returncode == 2, done.stderr
    assert check["message"] == "401 Unauthorized: expected a 2xx status"
    seen = [headers for path, headers in web.requests if path == "/secured"]
    assert seen[-1]["Authorization"] == token and seen[-1]["X-Plain"] == "shown"
    assert "s3cr3t" not in done.stdout + done.stderr

    del env["PROBE_TOKEN"]
    done, check = _maint_check(inventory, env, "api")
    assert done.returncode == 3, done.stderr
    assert check["state"] == "UNKNOWN"
    assert check["message"] == (
        "headers.Authorization: environment variable PROBE_TOKEN is not set on this machine"
    )


def _maint_check(
    inventory: Path, env: dict[str, str], name: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`maint health.check --json` run as a user runs it, and its one check named NAME."""
    argv = ["maint", "health.check", "-i", str(inventory), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    checks = json.loads(done.stdout)["results"][0]["details"]["checks"]
    (check,) = [c for c in checks if c["name"] == name]
    return done, check


# --- tcp ----------------------------------------------------------------------------------


def test_tcp_probe_connects_or_is_critical(web: WebServer, closed_port: int, tmp_path) -> None:
    """An open port is OK (WARNING or CRITICAL past the connect-time thresholds, here 0 ms);
    a closed port is CRITICAL."""
    address = f"127.0.0.1:{web.port}"
    probes = [
        {"name": "open", "tcp": address, "timeout": "3s"},
        {"name": "open-warn", "tcp": address, "warn_ms": 0, "crit_ms": 60000},
        {"name": "open-crit", "tcp": address, "warn_ms": 0, "crit_ms": 0},
        {"name": "closed", "tcp": f"127.0.0.1:{closed_port}"},
    ]
    checks = health_of(tmp_path, probes)
    assert states(checks) == {
        "disk /": "OK",
        "open": "OK",
        "open-warn": "WARNING",
        "open-crit": "CRITICAL",
        "closed": "CRITICAL",
    }
    assert checks["open"]["message"].startswith(f"{address} accepted a connection in ")
    assert checks["closed"]["message"] == f"127.0.0.1:{closed_port}: connection refused"


# --- sql ----------------------------------------------------------------------------------

STUCK_JOBS = (
    "SELECT count(*) FROM jobs WHERE status = 'processing'"
    " AND started_at < now() - interval '30 minutes'"
)


def test_sql_probe_counts_stuck_jobs_read_only(prod_cluster, tmp_path: Path) -> None:
    """The runbook's stuck-jobs query: 0 stuck is OK, 2 WARNING, 6 CRITICAL. The query runs
    read-only (a probe that writes is refused by the server: UNKNOWN, nothing deleted) and
    within its timeout (CRITICAL past it)."""
    host = {"ansible_connection": "local", "postgres": {"dsn": prod_cluster.dsn()}}
    with scratch_database(prod_cluster) as database:
        prod_cluster.execute(
            "CREATE TABLE jobs (id serial, status text, started_at timestamptz)", dbname=database
        )
        probes = [
            {"name": "stuck-jobs", "database": database, "sql": STUCK_JOBS, "warn": 1, "crit": 5},
            {"name": "writes", "database": database, "sql": "DELETE FROM jobs RETURNING 1"},
            {"name": "slow", "sql": "SELECT 1 FROM pg_sleep(5)", "timeout": 0.5},
            {"name": "replicas", "sql": "SELECT 0", "warn": 2, "crit": 1, "worse": "lower"},
        ]
        for stuck, state in ((0, "OK"), (2, "WARNING"), (6, "CRITICAL")):
            _jobs(prod_cluster, database, stuck)
            checks = health_of(tmp_path, probes, host)
            assert (checks["stuck-jobs"]["value"], checks["stuck-jobs"]["state"]) == (stuck, state)
        assert checks["stuck-jobs"]["message"] == "6 (warn 1, crit 5)"
        assert checks["writes"]["state"] == "UNKNOWN"
        assert "read-only transaction" in checks["writes"]["message"]
        assert prod_cluster.execute("SELECT count(*) FROM jobs", dbname=database) == [(8,)]
    assert (checks["slow"]["state"], checks["slow"]["message"]) == (
        "CRITICAL",
        "query ran past 0.5s",
    )
    assert checks["replicas"]["state"] == "CRITICAL"


def _jobs(cluster, database: str, stuck: int) -> None:
    """STUCK jobs processing for an hour, one processing for a minute and one done long ago."""
    cluster.execute("TRUNCATE jobs", dbname=database)
    cluster.execute(
        "INSERT INTO jobs (status, started_at) SELECT 'processing', now() - interval '1 hour'"
        " FROM generate_series(1, %s) UNION ALL SELECT 'processing', now() - interval '1 minute'"
        " UNION ALL SELECT 'done', now() - interval '2 days'",
        (stuck,),
        dbname=database,
    )


def test_sql_probes_share_the_hosts_tunnel(
    prod_cluster, ssh_fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """postgres.ssh_tunnel: with this machine cut off from the server (libpq sent nowhere
    unless told the tunnel's end), the sql probes and the built-in server checks still
    answer, all at once, through the host's tunnel."""
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.9")  # nothing listens there
    host = {
        **ssh_fleet.hosts[1].inventory_vars(),
        **fleet_vars(ssh_fleet),
        "postgres": {"dsn": prod_cluster.dsn(), "ssh_tunnel": True},
    }
    probes = [
        {"name": "sessions", "sql": "SELECT count(*) FROM pg_stat_activity", "crit": 10000},
        {"name": "databases", "sql": "SELECT count(*) FROM pg_database", "warn": 1, "crit": 0,
         "worse": "lower"},
    ]  # fmt: skip
    checks = health_of(tmp_path, probes, host)
    assert checks["postgres version"]["message"].startswith("PostgreSQL 15")
    assert (checks["sessions"]["state"], checks["databases"]["state"]) == ("OK", "OK")
    assert checks["databases"]["value"] >= 3


def test_sql_probe_without_a_server_is_refused_before_anything_runs(tmp_path: Path) -> None:
    inventory = write_inventory(
        tmp_path / "inv.yaml",
        {"h": {"ansible_connection": "local", "health": {"probes": [{"name": "q", "sql": "1"}]}}},
    )
    done = subprocess.run(
        ["maint", "health.check", "-i", str(inventory), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (3, ""), done.stderr
    assert "host 'h': health.probes[0] (q): an sql probe queries the host's server: " in (
        done.stderr
    )
    assert "postgres.dsn is not set" in done.stderr and "Traceback" not in done.stderr


# --- command ------------------------------------------------------------------------------


def test_command_probe_plugin_exit_codes_and_numbers(tmp_path: Path) -> None:
    probes = [
        {"name": "p0", "command": "echo 'OK - fine | lag=0'"},
        {"name": "p1", "command": "echo 'WARNING - lag 1200'; exit 1"},
        {"name": "p2", "command": "echo 'CRITICAL - lag 9000'; exit 2"},
        {"name": "p3", "command": "exit 3"},
        {"name": "n-ok", "command": "echo 12", "warn": 1000, "crit": 5000},
        {"name": "n-warn", "command": "echo '1200 messages'", "warn": 1000, "crit": 5000},
        {"name": "n-crit", "command": "echo 9000.5", "warn": 1000, "crit": 5000},
        {"name": "n-low", "command": "echo 1", "warn": 3, "crit": 2, "worse": "lower"},
        {"name": "n-text", "command": "echo lots", "crit": 5},
        {"name": "n-fails", "command": "echo oops >&2; exit 4", "crit": 5},
        {"name": "hangs", "command": "sleep 30", "timeout": 0.5},
    ]
    checks = health_of(tmp_path, probes)
    assert states(checks) == {
        "disk /": "OK",
        "p0": "OK",
        "p1": "WARNING",
        "p2": "CRITICAL",
        "p3": "UNKNOWN",
        "n-ok": "OK",
        "n-warn": "WARNING",
        "n-crit": "CRITICAL",
        "n-low": "CRITICAL",
        "n-text": "UNKNOWN",
        "n-fails": "UNKNOWN",
        "hangs": "CRITICAL",
    }
    assert (checks["p1"]["message"], checks["p1"]["value"]) == ("WARNING - lag 1200", 1)
    assert checks["p0"]["message"] == "OK - fine"  # the plugin's perfdata is not the message
    assert checks["n-crit"]["value"] == 9000.5
    assert checks["n-warn"]["message"] == "1200 (warn 1000, crit 5000)"
    assert checks["n-text"]["message"] == "expected a number, got 'lots'"
    assert checks["n-fails"]["message"] == "exit code 4: oops"
    assert checks["hangs"]["message"] == "timed out after 0.5s"


def test_via_host_runs_on_the_host_and_control_runs_here(
    ssh_fleet, web: WebServer, closed_port: int, tmp_path: Path
) -> None:
    """On an SSH host (user `fleet`): `via: host` commands run there, the default runs here;
    http and tcp probes with `via: host` are made from the host."""
    node = ssh_fleet.hosts[0]
    whoami = 'echo "OK - $(id -un)"'
    probes = [
        {"name": "there", "command": whoami, "via": "host"},
        {"name": "here", "command": whoami},
        {"name": "lag", "command": "echo 7", "warn": 5, "crit": 10, "via": "host"},
        {"name": "api", "http": f"{web.url}/from-host", "via": "host", "warn_ms": 60000},
        {"name": "api-down", "http": f"{web.url}/h?code=500", "via": "host"},
        {"name": "smtp", "tcp": f"127.0.0.1:{closed_port}", "via": "host"},
    ]
    host = {**node.inventory_vars(), **fleet_vars(ssh_fleet)}
    checks = health_of(tmp_path, probes, host)
    assert checks["there"]["message"] == "OK - fleet"
    assert checks["here"]["message"] == f"OK - {_local_user()}"
    assert states(checks) == {
        "disk /": "OK",
        "there": "OK",
        "here": "OK",
        "lag": "WARNING",
        "api": "OK",
        "api-down": "CRITICAL",
        "smtp": "CRITICAL",
    }
    assert checks["api"]["warn"] == 60000
    assert any(path == "/from-host" for path, _ in web.requests)
    assert checks["smtp"]["message"] == f"127.0.0.1:{closed_port}: connection refused"


def _local_user() -> str:
    return subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
