"""The demo behind `scripts/demo`: the product's main job against a throwaway local PostgreSQL.

It starts a cluster `maint_demo` on a free port, loads sample data with pgbench, writes
.demo/inventory.yaml (this machine, local connection, a backup directory under .demo/), backs
the database up, lists the backups, proves the backup restores with a drill, vacuums what
needs it, runs the health check, writes the restore report (.demo/report.html) and shows
when the default schedule would run each job; the cluster is removed at the end unless
--keep is given (the backups stay).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness import start_cluster  # noqa: E402

DEMO = REPO / ".demo"
STEPS = [
    ["backup.db"],
    ["backup.globals"],
    ["backup.list"],
    # One cluster only: the drill restores into a scratch database beside the source, which
    # the product does only when the target is named explicitly.
    ["restore.verify", "--target", "demo-db"],
    ["db.vacuum"],
    ["health.check"],
    ["report", "--output", ".demo/report.html"],  # every database green after the drill
    ["schedule.list", "--count", "1"],
]


def write_inventory(dsn: str) -> Path:
    inventory = {
        "all": {
            "vars": {"backup": {"store": str(DEMO / "backups"), "retention": {"keep_last": 7}}},
            "children": {
                "databases": {
                    "hosts": {
                        "demo-db": {
                            "ansible_connection": "local",
                            "postgres": {"dsn": dsn, "databases": ["app"]},
                            "restore_checks": [
                                {
                                    "name": "accounts restored",
                                    "sql": "SELECT count(*) FROM pgbench_accounts",
                                    "min": 1,
                                }
                            ],
                        }
                    }
                }
            },
        }
    }
    path = DEMO / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    path.chmod(0o600)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="leave the demo cluster running")
    args = parser.parse_args()
    DEMO.mkdir(mode=0o700, exist_ok=True)
    print("starting a throwaway PostgreSQL cluster 'maint_demo' ...", file=sys.stderr)
    cluster = start_cluster("maint_demo")
    failures = 0
    try:
        cluster.create_database("app")
        subprocess.run(
            ["pgbench", "-i", "-s", "5", "-q", cluster.dsn("app")], check=True, capture_output=True
        )
        inventory = write_inventory(cluster.dsn("app"))
        for step in STEPS:
            print(f"\n$ maint {' '.join(step)} -i {inventory.relative_to(REPO)}", flush=True)
            done = subprocess.run(["maint", *step, "-i", str(inventory)], cwd=REPO)
            failures += done.returncode != 0
    finally:
        if args.keep:
            print(f"\ncluster kept: {cluster.dsn('app', with_password=False)}", file=sys.stderr)
        else:
            cluster.destroy()
    print(f"\ndemo finished: {len(STEPS) - failures}/{len(STEPS)} steps passed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
