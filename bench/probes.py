"""Probe benchmark: `health.check` of 30 probes over 10 hosts vs its slowest probe alone.

Starts an HTTP server on loopback (tests.harness.web) whose endpoint answers after a known
delay, and times as whole processes, alternating over several rounds (medians):

  slowest alone   `maint health.check` of one host with one probe: the HTTP endpoint that
                  answers after --slow-ms (1 s)
  30 probes       `maint health.check` of 10 hosts with 3 probes each: that slow HTTP
                  endpoint, a command sleeping half of it, and a TCP connection

on hosts reached locally (`ansible_connection: local`) and, unless --no-ssh, on 10 SSH hosts
of the harness (sshd on loopback addresses) with every probe run on the host (`via: host`:
python3 there for http and tcp, the command through the host's SSH connection). Each run must
report every probe OK. Run one after another, the 30 probes would take
10 x (slow + slow/2) = 15 s; run in parallel (hosts at once up to --forks, a host's probes at
once), about as long as the slowest one.

    python bench/probes.py [--rounds 5] [--slow-ms 1000] [--no-ssh]

Target (issue 15): 30 probes <= 1.5x the slowest probe alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.measure import (  # noqa: E402
    Contender,
    Sample,
    alternate,
    print_table,
    timed,
    venv_command,
)
from tests.harness import start_fleet  # noqa: E402
from tests.harness.web import WebServer  # noqa: E402
from tests.inventories import fleet_vars, write_inventory  # noqa: E402

HOSTS = 10
TARGET = 1.5
QUIET_DISK = {"disk_warn_free_pct": 0, "disk_crit_free_pct": 0}


def host_probes(web: WebServer, slow_ms: int, via: str) -> list[dict[str, Any]]:
    """The three probes of every host: the slow endpoint, a command, a TCP connection."""
    return [
        {"name": "api", "http": f"{web.url}/health?sleep_ms={slow_ms}", "via": via},
        {"name": "worker", "command": f"sleep {slow_ms / 2000:g}", "via": via},
        {"name": "port", "tcp": f"127.0.0.1:{web.port}", "via": via},
    ]


def contender(
    name: str, hosts: dict[str, dict[str, Any]], all_vars: dict[str, Any], workdir: Path
) -> Contender:
    """`maint health.check` of HOSTS, whose every check must be OK."""
    directory = workdir / name.replace(" ", "-")
    directory.mkdir()
    inventory = write_inventory(directory / "inventory.yaml", hosts, all_vars=all_vars)
    probes = sum(len(vars_["health"]["probes"]) for vars_ in hosts.values())
    argv = [venv_command("maint"), "health.check", "-i", str(inventory), "--json"]
    argv += ["--forks", str(len(hosts))]

    def measure() -> Sample:
        run = timed(argv, cwd=directory)
        if run.returncode != 0:
            raise SystemExit(f"{name}: exit {run.returncode}\n{run.stdout}\n{run.stderr}")
        results = json.loads(run.stdout)["results"]
        checked = [c for r in results for c in r["details"]["checks"] if c["name"] != "disk /"]
        assert len(checked) == probes and all(c["state"] == "OK" for c in checked), checked
        return Sample(run)

    return Contender(name, measure)


def pair(
    label: str,
    vars_of: list[dict[str, Any]],
    all_vars: dict[str, Any],
    web: WebServer,
    args: argparse.Namespace,
    workdir: Path,
) -> tuple[Contender, Contender]:
    """The slowest probe alone on the first host, and the 30 probes over every host."""
    via = "host" if label == "ssh" else "control"
    probes = host_probes(web, args.slow_ms, via)
    alone = {"h00": {**vars_of[0], "health": {**QUIET_DISK, "probes": probes[:1]}}}
    fleet = {
        f"h{index:02}": {**host_vars, "health": {**QUIET_DISK, "probes": probes}}
        for index, host_vars in enumerate(vars_of)
    }
    return (
        contender(f"{label} slowest alone", alone, all_vars, workdir),
        contender(f"{label} 30 probes", fleet, all_vars, workdir),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slow-ms", type=int, default=1000)
    parser.add_argument("--no-ssh", action="store_true", help="local hosts only")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-probes-"))
    pairs = []
    with WebServer() as web:
        local = [{"ansible_connection": "local"}] * HOSTS
        pairs.append(pair("local", local, {}, web, args, workdir))
        fleet = None if args.no_ssh else start_fleet(HOSTS, workdir / "ssh")
        try:
            if fleet is not None:
                ssh = [host.inventory_vars() for host in fleet.hosts]
                pairs.append(pair("ssh", ssh, fleet_vars(fleet), web, args, workdir))
            for contenders in pairs:
                alternate(list(contenders), args.rounds)
        finally:
            if fleet is not None:
                fleet.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    rows = []
    for alone, many in pairs:
        ratio = many.median() / alone.median()
        rows.append((many.name.split()[0], alone.median(), many.median(), f"{ratio:.2f}x"))
    print(f"\nmedians of {args.rounds} rounds; slowest probe {args.slow_ms} ms; "
          f"{HOSTS} hosts x 3 probes; target <= {TARGET}x")  # fmt: skip
    print_table(("hosts", "slowest alone s", "30 probes s", "ratio"), rows)


if __name__ == "__main__":
    main()
