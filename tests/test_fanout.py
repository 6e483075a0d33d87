"""Fan-out over real SSH hosts: one result per host, and a down host never stops the others."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from maintenance.executor import run_procedure
from maintenance.inventory import Host, load_inventory
from maintenance.results import Result, Status
from maintenance.runners import Runner
from tests.inventories import fleet_hosts, fleet_vars, write_inventory


def hostname_procedure(host: Host, runner: Runner, options: object) -> Result:
    output = runner.run("whoami; sleep 0.3").check().stdout.strip()
    return Result(host.name, Status.OK, details={"user": output}, summary=output)


def test_fanout_over_five_hosts_with_one_down(ssh_fleet, tmp_path: Path) -> None:
    """Five reachable hosts report ok, the down one unreachable; all run in parallel."""
    hosts = fleet_hosts(ssh_fleet)
    hosts["down01"] = {**ssh_fleet.hosts[0].inventory_vars(), "ansible_host": "127.0.0.250"}
    inventory = load_inventory(
        write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    )
    started = time.monotonic()
    results = run_procedure("test.whoami", hostname_procedure, list(inventory), None, forks=10)
    elapsed = time.monotonic() - started
    by_host = {result.host: result for result in results}
    assert [result.host for result in results] == list(hosts)
    assert by_host["down01"].status == Status.UNREACHABLE
    assert "127.0.0.250" in by_host["down01"].error
    for host in ssh_fleet.hosts:
        assert by_host[host.name].status == Status.OK
        assert by_host[host.name].details == {"user": "fleet"}
    assert elapsed < 5 * 0.3, f"hosts ran one after another ({elapsed:.2f}s)"


def test_forks_limits_concurrency(ssh_fleet, tmp_path: Path) -> None:
    inventory = load_inventory(
        write_inventory(
            tmp_path / "inv.yaml", fleet_hosts(ssh_fleet), all_vars=fleet_vars(ssh_fleet)
        )
    )
    active = 0
    peak = 0
    lock = threading.Lock()

    def counting(host: Host, runner: Runner, options: object) -> Result:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            runner.run("sleep 0.2").check()
        finally:
            with lock:
                active -= 1
        return Result(host.name, Status.OK)

    results = run_procedure("test.forks", counting, list(inventory), None, forks=2)
    assert [r.status for r in results] == [Status.OK] * len(ssh_fleet.hosts)
    assert peak == 2


def test_a_crashing_procedure_fails_its_host_only(ssh_fleet, tmp_path: Path) -> None:
    inventory = load_inventory(
        write_inventory(
            tmp_path / "inv.yaml", fleet_hosts(ssh_fleet), all_vars=fleet_vars(ssh_fleet)
        )
    )
    victim = ssh_fleet.hosts[2].name

    def sometimes_crashes(host: Host, runner: Runner, options: object) -> Result:
        if host.name == victim:
            raise KeyError("boom")
        return Result(host.name, Status.CHANGED)

    results = run_procedure("test.crash", sometimes_crashes, list(inventory), None)
    statuses = {r.host: r.status for r in results}
    assert statuses.pop(victim) == Status.FAILED
    assert set(statuses.values()) == {Status.CHANGED}
    assert "internal error: KeyError" in next(r.error for r in results if r.host == victim)


def test_cli_json_document_over_fleet_with_down_host(ssh_fleet, tmp_path: Path) -> None:
    """`maint health.check --json` prints one document on stdout; the down host is unknown (3)."""
    hosts = fleet_hosts(ssh_fleet)
    hosts["down01"] = {**ssh_fleet.hosts[0].inventory_vars(), "ansible_host": "127.0.0.250"}
    path = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    done = subprocess.run(
        ["maint", "health.check", "--inventory", str(path), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert report["task"] == "health.check"
    assert report["summary"] == {"ok": 5, "changed": 0, "failed": 0, "unreachable": 1, "skipped": 0}
    assert {r["host"] for r in report["results"]} == set(hosts)
    for line in done.stderr.strip().splitlines():
        event = json.loads(line)
        assert event["task"] == "health.check" and "host" in event
