"""logs.clean over real SSH: real files with ages set by os.utime, cleaned as user fleet."""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.inventories import fleet_hosts, fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DAY = 86400


@pytest.fixture
def tree() -> Iterator[Path]:
    """A directory the fleet user owns (pytest's own tmp tree is closed to it)."""
    top = Path(tempfile.mkdtemp(prefix="maint-logs-", dir="/var/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def make(path: Path | bytes, age_s: float, size: int = 1000, content: bytes | None = None) -> None:
    """A file of SIZE bytes last modified AGE_S seconds ago, owned by the fleet user."""
    data = (
        content if content is not None else bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    )
    with open(path, "wb") as handle:
        handle.write(data)
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def hand_to_fleet(top: Path) -> None:
    """chown the tree to the fleet user, who runs the cleanup over SSH."""
    user = pwd.getpwnam("fleet")
    for root, dirs, files in os.walk(os.fsencode(top)):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)
    os.chown(top, user.pw_uid, user.pw_gid)


def clean(ssh_fleet, tmp_path: Path, rules: list[dict], *flags: str) -> tuple[int, dict, str]:
    """Run `maint logs.clean --json` on node01 with RULES; (exit code, document, stderr)."""
    host = ssh_fleet.hosts[0].name
    hosts = {host: fleet_hosts(ssh_fleet)[host] | {"logs": rules}}
    inventory = write_inventory(tmp_path / "inventory.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
    done = run_maint_cli(["logs.clean", "-i", str(inventory), "--json", *flags])
    document = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, document, done.stderr


def names(directory: Path) -> set[str]:
    return {os.fsdecode(name) for name in os.listdir(os.fsencode(directory))}


def test_old_logs_are_compressed_keeping_mtime_and_older_ones_deleted(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """A 3-day-old log becomes .gz with its mtime and content; a 20-day-old one is gone."""
    logs = tree / "app"
    logs.mkdir()
    make(logs / "today.log", 3600)
    make(logs / "mid.log", 3 * DAY, size=5000)
    make(logs / "old.log", 20 * DAY, size=700)
    make(logs / "older.log.gz", 30 * DAY, size=300)
    make(logs / "notes.txt", 30 * DAY)
    mid_mtime = (logs / "mid.log").stat().st_mtime
    original = (logs / "mid.log").read_bytes()
    hand_to_fleet(tree)

    rule = {"path": f"{logs}/*.log", "compress_after": "1d", "delete_after": "14d"}
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule])

    assert code == 0, stderr
    assert names(logs) == {"today.log", "mid.log.gz", "notes.txt"}
    assert (logs / "mid.log.gz").stat().st_mtime == mid_mtime
    assert gzip.decompress((logs / "mid.log.gz").read_bytes()) == original
    result = document["results"][0]
    compressed_size = (logs / "mid.log.gz").stat().st_size
    assert result["status"] == "changed"
    assert (result["details"]["compressed"], result["details"]["deleted"]) == (1, 2)
    assert result["details"]["bytes_freed"] == 700 + 300 + 5000 - compressed_size


def test_dry_run_lists_every_file_and_changes_nothing(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """--dry-run shows each file with its action and reason; the tree stays as it was."""
    make(tree / "a.log", 3 * DAY)
    make(tree / "b.log", 20 * DAY + 600)  # the host's clock reads whole seconds: a margin
    make(tree / "c.log", 60)
    hand_to_fleet(tree)
    before = {name: (tree / name).stat().st_mtime for name in names(tree)}

    rule = {"path": f"{tree}/*.log", "compress_after": "1d", "delete_after": "14d"}
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule], "--dry-run")

    assert code == 0, stderr
    assert {name: (tree / name).stat().st_mtime for name in names(tree)} == before
    rows = document["results"][0]["details"]["rows"]
    actions = {Path(row["path"]).name: row["action"] for row in rows}
    assert actions == {"a.log": "compress", "b.log": "delete", "c.log": "keep"}
    table = run_maint_cli(
        ["logs.clean", "-i", str(tmp_path / "inventory.yaml"), "--dry-run"]
    ).stdout
    assert "delete    age 20d0h" in table and f"{tree}/b.log" in table


def test_symlink_pointing_outside_the_base_is_left_untouched(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """Links to files and directories outside the base: neither link nor target is touched."""
    base, outside = tree / "logs", tree / "elsewhere"
    base.mkdir()
    outside.mkdir()
    make(outside / "precious.log", 90 * DAY)
    make(base / "stale.log", 90 * DAY)
    (base / "link.log").symlink_to(outside / "precious.log")
    (base / "linked-dir").symlink_to(outside)
    hand_to_fleet(tree)

    rule = {"path": f"{base}/**/*.log", "compress_after": "1d", "delete_after": "30d"}
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule])

    assert code == 0, stderr
    assert names(outside) == {"precious.log"}
    assert names(base) == {"link.log", "linked-dir"}
    assert (base / "link.log").is_symlink() and (base / "linked-dir").is_symlink()
    assert document["results"][0]["details"]["deleted"] == 1


def test_file_written_within_min_age_is_left_alone(ssh_fleet, tree: Path, tmp_path: Path) -> None:
    """Even a rule deleting everything spares a file modified within min_age."""
    make(tree / "current.log", 30)
    make(tree / "rotated.log", 3600)
    hand_to_fleet(tree)

    rule = {"path": f"{tree}/*.log", "delete_after": "1s", "min_age": "10m"}
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule])

    assert code == 0, stderr
    assert names(tree) == {"current.log"}
    assert document["results"][0]["details"]["deleted"] == 1


def test_size_cap_deletes_oldest_first(ssh_fleet, tree: Path, tmp_path: Path) -> None:
    """Ten 1000-byte logs under a 4500-byte cap: the six oldest go, the four newest stay."""
    for hours in range(1, 11):
        make(tree / f"app-{hours:02d}h.log", hours * 3600)
    hand_to_fleet(tree)

    code, document, stderr = clean(
        ssh_fleet, tmp_path, [{"path": f"{tree}/app-*.log", "max_total_size": 4500}]
    )

    assert code == 0, stderr
    assert names(tree) == {f"app-{hours:02d}h.log" for hours in range(1, 5)}
    assert document["results"][0]["details"]["bytes_freed"] == 6000


def test_dangerous_glob_is_refused_before_anything_runs(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """A glob without a safe base directory exits 2 naming host and key; no host is touched."""
    make(tree / "old.log", 90 * DAY)
    hand_to_fleet(tree)
    rules = [
        {"path": f"{tree}/*.log", "delete_after": "1d"},
        {"path": "/var/*", "delete_after": "1d"},
    ]

    code, document, stderr = clean(ssh_fleet, tmp_path, rules)

    assert code == 2 and not document
    assert ": logs[1].path: path '/var/*' works directly in the system directory /var" in stderr
    assert "Traceback" not in stderr
    assert names(tree) == {"old.log"}


def test_glob_matching_directories_is_refused(ssh_fleet, tree: Path, tmp_path: Path) -> None:
    """`dir/*` that also matches a subdirectory fails the host and deletes nothing."""
    make(tree / "old.log", 90 * DAY)
    (tree / "archive").mkdir()
    hand_to_fleet(tree)

    code, document, _ = clean(ssh_fleet, tmp_path, [{"path": f"{tree}/*", "delete_after": "1d"}])

    assert code == 1
    assert "expands to directories" in document["results"][0]["error"]
    assert names(tree) == {"old.log", "archive"}


def test_odd_file_names_are_cleaned(ssh_fleet, tree: Path, tmp_path: Path) -> None:
    """Spaces, newlines, quotes, shell syntax, leading dashes and non-UTF-8 bytes all work."""
    odd = [
        b"with space.log",
        b"new\nline.log",
        b"quote'and\"dq.log",
        b"$(touch pwned).log",
        b"-rf.log",
        b"star*.log",
        b"caf\xe9.log",
        b"tab\there.log",
    ]
    for name in odd:
        make(os.path.join(os.fsencode(tree), name), 30 * DAY)
    make(os.path.join(os.fsencode(tree), b"fresh \xff.log"), 2 * DAY)
    hand_to_fleet(tree)

    rule = {"path": f"{tree}/*.log", "compress_after": "1d", "delete_after": "14d"}
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule])

    assert code == 0, stderr
    assert set(os.listdir(os.fsencode(tree))) == {b"fresh \xff.log.gz"}
    assert document["results"][0]["details"]["deleted"] == len(odd)
    assert not Path("/home/fleet/pwned").exists()


def test_zstd_codec_compresses_keeping_mtime(ssh_fleet, tree: Path, tmp_path: Path) -> None:
    make(tree / "a.log", 3 * DAY)
    mtime = (tree / "a.log").stat().st_mtime
    hand_to_fleet(tree)

    rule = {"path": f"{tree}/*.log", "compress_after": "1d", "codec": "zstd"}
    code, _, stderr = clean(ssh_fleet, tmp_path, [rule])

    assert code == 0, stderr
    assert names(tree) == {"a.log.zst"}
    assert (tree / "a.log.zst").stat().st_mtime == mtime


def test_missing_zstd_on_the_host_is_a_clear_error(tree: Path, tmp_path: Path) -> None:
    """A host whose PATH has find and gzip but no zstd: the rule fails saying so."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("find", "xargs", "date", "gzip", "mktemp", "rm", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    make(tree / "a.log", 3 * DAY)
    rule = {"path": f"{tree}/*.log", "compress_after": "1d", "codec": "zstd"}
    inventory = write_inventory(
        tmp_path / "inventory.yaml", {"box": {"ansible_connection": "local", "logs": [rule]}}
    )
    done = subprocess.run(
        [shutil.which("maint"), "logs.clean", "-i", str(inventory), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(bin_dir)},
    )
    assert done.returncode == 1, done.stderr
    assert "zstd is not installed on the host" in json.loads(done.stdout)["results"][0]["error"]
    assert names(tree) == {"a.log"}


def test_ten_thousand_files_cleaned_over_ssh_in_seconds(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """10 000 logs in 100 directories: a third compressed, a third deleted, in few round trips."""
    expected = {"keep": 0, "compress": 0, "delete": 0}
    for directory in range(100):
        sub = tree / f"svc{directory:03d}"
        sub.mkdir()
        for index in range(100):
            kind = ("keep", "compress", "delete")[(directory * 100 + index) % 3]
            expected[kind] += 1
            age = {"keep": 3600, "compress": 3 * DAY, "delete": 20 * DAY}[kind]
            make(sub / f"{kind}-{index}.log", age + index, size=200)
    hand_to_fleet(tree)

    rule = {"path": f"{tree}/**/*.log", "compress_after": "1d", "delete_after": "14d"}
    started = time.monotonic()
    code, document, stderr = clean(ssh_fleet, tmp_path, [rule])
    elapsed = time.monotonic() - started

    assert code == 0, stderr
    details = document["results"][0]["details"]
    assert (details["compressed"], details["deleted"]) == (expected["compress"], expected["delete"])
    remaining = [name for _, _, files in os.walk(tree) for name in files]
    assert len(remaining) == expected["keep"] + expected["compress"]
    assert sum(name.endswith(".log.gz") for name in remaining) == expected["compress"]
    print(f"10 000 files cleaned over SSH in {elapsed:.1f}s")
    assert elapsed < 30


def test_unreachable_host_is_reported_as_such(ssh_fleet, tmp_path: Path) -> None:
    """A host whose sshd is not there: status unreachable, exit 1, the other host still cleaned."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as top:
        Path(top).chmod(0o755)
        make(Path(top) / "old.log", 30 * DAY)
        hand_to_fleet(Path(top))
        rule = {"path": f"{top}/*.log", "delete_after": "14d"}
        live, dead = (host.name for host in ssh_fleet.hosts[:2])
        hosts = fleet_hosts(ssh_fleet, logs=[rule])
        hosts = {live: hosts[live], dead: hosts[dead] | {"ansible_port": 1}}
        inventory = write_inventory(tmp_path / "inv.yaml", hosts, all_vars=fleet_vars(ssh_fleet))
        done = run_maint_cli(["logs.clean", "-i", str(inventory), "--json"])
        statuses = {r["host"]: r["status"] for r in json.loads(done.stdout)["results"]}
        assert done.returncode == 1
        assert statuses == {live: "changed", dead: "unreachable"}
        assert names(Path(top)) == set()
