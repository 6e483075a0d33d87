"""Command line: bring the test services up for demos and benchmarks, then down again.

    python -m tests.harness up --postgres maint_demo --ssh 10 --s3 --gcs --state s.json
    python -m tests.harness up --rabbitmq --redis --mariadb --state s.json --detach
    python -m tests.harness down --state s.json

``up`` writes the JSON state once everything is ready and keeps running until SIGTERM or
SIGINT, then cleans up; ``--detach`` returns as soon as the state file is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .mariadb import start_mariadb
from .objectstores import start_gcs_emulator, start_moto
from .postgres import drop_cluster, start_cluster
from .rabbitmq import start_rabbitmq
from .redis import start_redis
from .sshd import start_fleet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start services and wait for SIGTERM/SIGINT")
    up.add_argument("--postgres", action="append", default=[], metavar="NAME")
    up.add_argument("--ssh", type=int, default=0, metavar="N", help="number of sshd hosts")
    up.add_argument("--ssh-user", default="fleet")
    up.add_argument("--s3", action="store_true", help="start moto")
    up.add_argument("--gcs", action="store_true", help="start the GCS emulator")
    up.add_argument(
        "--rabbitmq", action="store_true", help="start a RabbitMQ node with its management API"
    )
    up.add_argument("--redis", action="store_true", help="start a Redis server")
    up.add_argument("--mariadb", action="store_true", help="start a MariaDB server")
    up.add_argument("--detach", action="store_true", help="return once services are ready")
    up.add_argument("--state", type=Path, required=True)
    down = commands.add_parser("down", help="stop what 'up' started")
    down.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "down":
        return _down(args.state)
    if args.detach:
        return _detach(args.state, [a for a in (argv or sys.argv[1:]) if a != "--detach"])
    return _up(args)


def _up(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    state_path: Path = args.state.resolve()
    state: dict[str, Any] = {"pid": os.getpid(), "postgres": {}}
    cleanups: list = []
    try:
        for name in args.postgres:
            cluster = start_cluster(name)
            cleanups.append(cluster.destroy)
            state["postgres"][name] = {
                "port": cluster.port,
                "host": cluster.host,
                "user": cluster.superuser,
                "password": cluster.password,
                "dsn": cluster.dsn(),
            }
        if args.ssh:
            workdir = Path(tempfile.mkdtemp(prefix="maint-harness-ssh-"))
            cleanups.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
            fleet = start_fleet(args.ssh, workdir, user=args.ssh_user)
            cleanups.append(fleet.stop)
            state["ssh"] = {
                "port": fleet.port,
                "user": args.ssh_user,
                "key_path": str(fleet.key_path),
                "known_hosts": str(fleet.known_hosts),
                "workdir": str(workdir),
                "auth_dir": str(fleet.auth_dir),
                "pids": fleet.pids,
                "hosts": {h.name: h.inventory_vars() for h in fleet.hosts},
            }
        for enabled, key, starter in (
            (args.s3, "s3", start_moto),
            (args.gcs, "gcs", start_gcs_emulator),
        ):
            if enabled:
                service = starter()
                cleanups.append(service.stop)
                state[key] = {
                    "url": service.url,
                    "pid": service.process.pid,
                    "log": str(service.log_path),
                }
        if args.rabbitmq:
            broker = start_rabbitmq()
            cleanups.append(broker.stop)
            state["rabbitmq"] = {
                "management_url": broker.management_url,
                "amqp_port": broker.amqp_port,
                "user": broker.user,
                "password": broker.password,
                "pids": [broker.process.pid, broker.epmd.pid],
                "workdir": str(broker.workdir),
            }
        if args.redis:
            cache = start_redis()
            cleanups.append(cache.stop)
            state["redis"] = {
                "url": cache.url(),
                "password": cache.password,
                "pid": cache.process.pid,
                "workdir": str(cache.workdir),
            }
        if args.mariadb:
            mariadb = start_mariadb()
            cleanups.append(mariadb.stop)
            state["mariadb"] = {
                "url": mariadb.url(),
                "password": mariadb.password,
                "pid": mariadb.process.pid,
                "workdir": str(mariadb.workdir),
            }
        _write_json(state_path, state)
        cleanups.append(lambda: state_path.unlink(missing_ok=True))
        print(f"harness up; state in {state_path}", flush=True)
        while not stop.is_set():
            stop.wait(1)
    finally:
        for cleanup in reversed(cleanups):
            try:
                cleanup()
            except Exception as error:  # keep cleaning the rest
                print(f"cleanup failed: {error}", file=sys.stderr)
    return 0


def _detach(state_path: Path, argv: list[str]) -> int:
    """Re-run ``up`` in a new session and wait until it has written the state file."""
    state_path.unlink(missing_ok=True)
    log_path = state_path.with_suffix(".log")
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.harness", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if state_path.exists():
            print(state_path.read_text())
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.1)
    else:
        child.terminate()
    print(f"harness failed to come up; log {log_path}:\n{log_path.read_text()}", file=sys.stderr)
    return 1


def _down(state_path: Path) -> int:
    """Signal the ``up`` process and wait for it to finish cleaning up."""
    if not state_path.exists():
        print(f"{state_path} not found; nothing to stop", file=sys.stderr)
        return 0
    pid = json.loads(state_path.read_text())["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        print(f"up process {pid} still running after 60 s", file=sys.stderr)
        return 1
    if state_path.exists():  # 'up' died without cleaning up (e.g. SIGKILL): do it here
        _cleanup_from_state(json.loads(state_path.read_text()))
        state_path.unlink()
    return 0


def _cleanup_from_state(state: dict[str, Any]) -> None:
    for name in state.get("postgres", {}):
        drop_cluster(name)
    pids = [*state.get("ssh", {}).get("pids", [])]
    pids += [state[key]["pid"] for key in ("s3", "gcs") if key in state]
    for pid in pids:
        # Only signal processes that still look like ours (pids get reused).
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if any(mark in cmdline for mark in (b"sshd", b"moto", b"gcp_storage_emulator")):
                os.kill(pid, signal.SIGTERM)
    # RabbitMQ's node and epmd lead process groups of their own (beam, erl_child_setup, ...).
    for pid in state.get("rabbitmq", {}).get("pids", []):
        with contextlib.suppress(OSError):
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"rabbitmq" in cmdline or b"epmd" in cmdline:
                os.killpg(pid, signal.SIGKILL)
    for key, mark in (("redis", b"redis-server"), ("mariadb", b"mariadbd")):
        if key in state:
            with contextlib.suppress(OSError):
                if mark in Path(f"/proc/{state[key]['pid']}/cmdline").read_bytes():
                    os.kill(state[key]["pid"], signal.SIGTERM)
    for key in ("rabbitmq", "redis", "mariadb"):
        if key in state:
            shutil.rmtree(state[key]["workdir"], ignore_errors=True)
    for key in ("s3", "gcs"):
        if key in state:
            Path(state[key]["log"]).unlink(missing_ok=True)
    if "ssh" in state:
        for key in ("workdir", "auth_dir"):
            shutil.rmtree(state["ssh"][key], ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours is as good as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write, so a poller never reads a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


if __name__ == "__main__":
    sys.exit(main())
