"""postgres.ssh_tunnel: db tasks reach the server through the host's own SSH connection."""

from __future__ import annotations

import socket
from pathlib import Path

from maintenance.db.server import open_server
from maintenance.db.settings import settings_for
from maintenance.inventory import Host
from maintenance.runners import SshRunner
from tests.db_helpers import run_maint, scratch_database
from tests.inventories import fleet_vars, write_inventory


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
