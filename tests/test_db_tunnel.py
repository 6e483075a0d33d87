"""postgres.ssh_tunnel: db tasks reach the server through the host's own SSH connection."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from maintenance.db.server import open_server
from maintenance.db.settings import settings_for
from maintenance.inventory import Host
from maintenance.runners import SshRunner
from tests.db_helpers import create_table, run_maint, scratch_database
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli


def tunnelled_host(fleet, cluster, database: str) -> Host:
    node = fleet.hosts[0]
    postgres = {"dsn": cluster.dsn(database), "ssh_tunnel": True, "databases": [database]}
    return Host(node.name, (), {**node.inventory_vars(), **fleet_vars(fleet), "postgres": postgres})


def test_connections_go_through_the_ssh_tunnel(prod_cluster, ssh_fleet) -> None:
    """libpq dials a loopback port of the tunnel, yet lands on the cluster; closing it ends it."""
    with scratch_database(prod_cluster) as database:
        host = tunnelled_host(ssh_fleet, prod_cluster, database)
        runner = SshRunner(host)
        try:
            with open_server(host, runner, "db.bloat", settings_for(host)) as server:
                local_port = int(server.postgres.params["port"])
                assert local_port != prod_cluster.port
                with server.connect(database) as connection:
                    assert connection.info.port == local_port
                    row = connection.execute("SELECT current_database(), current_setting('port')")
                    assert row.fetchone() == (database, str(prod_cluster.port))
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", local_port)) != 0
        finally:
            runner.close()


def test_task_runs_over_the_tunnel_from_the_cli(prod_cluster, ssh_fleet, tmp_path: Path) -> None:
    """`maint db.vacuum --all` on an SSH host with ssh_tunnel: true vacuums the remote tables."""
    with scratch_database(prod_cluster) as database:
        prod_cluster.execute("CREATE TABLE t (id int)", dbname=database)
        host = tunnelled_host(ssh_fleet, prod_cluster, database)
        inventory = write_inventory(tmp_path / "inv.yaml", {host.name: dict(host.vars)})
        code, report, _ = run_maint("db.vacuum", inventory, "--all", process=True)
        assert code == 0, report
        assert [row["object"] for row in report["results"][0]["details"]["rows"]] == ["public.t"]
        assert prod_cluster.password not in str(report)


# --- every task through the tunnel -------------------------------------------------------------

NOWHERE = "127.0.0.9"  # nothing listens there


def control_cut_off() -> dict[str, str]:
    """An environment in which this machine cannot reach the server directly.

    libpq takes PGHOSTADDR for a DSN that names no hostaddr, so every connection `maint` opens
    itself goes nowhere unless it names the tunnel's end; sshd sessions on the host never see
    this environment, so client tools run there connect as the DSN says. That is the server
    listening only where the host sees it, on one machine.
    """
    return {**os.environ, "PGHOSTADDR": NOWHERE}


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"], env=control_cut_off())
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def tunnel_host(fleet, index: int, dsn: str, **extra) -> dict:
    return {**fleet.hosts[index].inventory_vars(), "postgres": {"dsn": dsn, "ssh_tunnel": True},
            **extra}  # fmt: skip


def test_backup_and_restore_drill_pass_through_the_tunnel(
    prod_cluster, staging_cluster, ssh_fleet, tmp_path: Path
) -> None:
    """backup.db, backup.globals and restore.verify work with only the hosts able to reach
    their servers: this machine's connections go through each host's tunnel (the source's for
    the snapshot and counts, the target's for the scratch database and checks), pg_dump and
    pg_restore run on the hosts against the DSN."""
    with scratch_database(prod_cluster) as database:
        create_table(prod_cluster, database, "items", 500)
        source = tunnel_host(ssh_fleet, 0, prod_cluster.dsn(database),
                             backup={"store": str(tmp_path / "store")}, restore_target="node02")
        source["postgres"]["databases"] = [database]
        target = tunnel_host(ssh_fleet, 1, staging_cluster.dsn())
        inventory = write_inventory(
            tmp_path / "inv.yaml", {"node01": source, "node02": target},
            all_vars=fleet_vars(ssh_fleet),
        )  # fmt: skip
        code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "node01")
        assert code == 0, stderr
        [dumped] = report["results"][0]["details"]["databases"]
        assert dumped["status"] == "ok" and dumped["tables"] == 1
        code, report, stderr = maint("backup.globals", "-i", str(inventory), "--limit", "node01")
        assert code == 0, stderr
        code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "node01")
        assert code == 0, stderr + json.dumps(report)
        [drill] = report["results"][0]["details"]["drills"]
        assert drill["ok"] and drill["target"] == "node02"
        assert [(c["table"], c["actual"]) for c in drill["counts"]] == [("public.items", 500)]
        assert prod_cluster.password not in json.dumps(report) + stderr
        left = staging_cluster.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                       ("maint_verify%",))  # fmt: skip
        assert left == []


def test_health_check_passes_through_the_tunnel(prod_cluster, ssh_fleet, tmp_path: Path) -> None:
    """The server's checks run through the tunnel; without it, this machine cannot reach the
    server, which shows the tunnel is what carried them."""
    tunnelled = tunnel_host(ssh_fleet, 2, prod_cluster.dsn())
    direct = {**tunnelled, "postgres": {"dsn": prod_cluster.dsn()}}
    inventory = write_inventory(
        tmp_path / "inv.yaml", {"node03": tunnelled, "node04": {**direct,
        **ssh_fleet.hosts[3].inventory_vars()}}, all_vars=fleet_vars(ssh_fleet),
    )  # fmt: skip
    code, report, stderr = maint("health.check", "-i", str(inventory))
    assert code in (0, 1, 2), stderr
    checks = {
        result["host"]: {check["name"]: check for check in result["details"]["checks"]}
        for result in report["results"]
    }
    assert checks["node03"]["postgres connections"]["state"] in ("OK", "WARNING")
    assert checks["node03"]["postgres version"]["message"].startswith("PostgreSQL 15")
    assert checks["node04"]["postgres"]["state"] == "CRITICAL"
    assert NOWHERE in checks["node04"]["postgres"]["message"]
