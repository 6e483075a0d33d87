"""logs.rotate on real files: the local host in-process, SSH hosts through the real `maint`.

Days are simulated by moving the host's rotation state back (the format is documented in
maintenance/logs/rotate_state.py), as a test of logrotate moves its state file.
"""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from maintenance.errors import CommandError
from maintenance.executor import run_procedure
from maintenance.inventory import load_inventory
from maintenance.logs import Imports, RotateOptions, rotate_host
from maintenance.logs.logrotate_conf import parse_logrotate
from maintenance.logs.rotate import carry_out, host_rules, list_host
from maintenance.logs.rotate_plan import plan_rules
from maintenance.logs.rotate_state import state_dir_shell, state_files
from maintenance.results import Result
from maintenance.runners import LocalRunner
from tests.inventories import fleet_hosts, fleet_vars, write_inventory

STATE = state_files("local1").state
DAY = 86400
FIXTURES = Path(__file__).parent / "fixtures" / "logrotate"
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture
def tree() -> Iterator[Path]:
    """A log directory and a state directory, world-readable (the fleet user works in it)."""
    top = Path(tempfile.mkdtemp(prefix="maint-rotate-", dir="/var/tmp"))
    top.chmod(0o755)
    (top / "logs").mkdir()
    (top / "state").mkdir()
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def local_host(tree: Path, tmp_path: Path, rules: list[dict[str, Any]]):
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {"local1": {"ansible_connection": "local", "logs": rules}},
        all_vars={"state_dir": str(tree / "state")},
    )
    return load_inventory(inventory).hosts["local1"]


def rotate(host, *, force: bool = False, dry_run: bool = False) -> Result:
    """One logs.rotate run on HOST, as the task makes it (imports read first)."""
    options = RotateOptions(Imports(lambda: [host], 1), force=force, dry_run=dry_run)
    return run_procedure("logs.rotate", rotate_host, [host], options)[0]


def a_day_passes(tree: Path, days: int = 1) -> None:
    """Move every 'last rotated' of the state back DAYS days."""
    path = tree / "state" / STATE
    header, *lines = path.read_text().splitlines()
    moved = [json.dumps([p, when - days * DAY]) for p, when in map(json.loads, lines)]
    path.write_text("\n".join([header, *moved]) + "\n")


def names(directory: Path) -> set[str]:
    return set(os.listdir(directory))


def write(path: Path, text: str) -> None:
    with open(path, "a") as handle:
        handle.write(text)


def rule(tree: Path, **keys: Any) -> dict[str, Any]:
    return {"path": f"{tree}/logs/*.log", "rotate": "daily", "keep": 3, **keys}


def test_daily_rotates_once_a_day_however_often_it_runs_and_force_rotates_now(
    tree: Path, tmp_path: Path
) -> None:
    """First run records the file; a day later it rotates, once; --force rotates again."""
    logs = tree / "logs"
    write(logs / "app.log", "day 0\n")
    host = local_host(tree, tmp_path, [rule(tree)])

    assert rotate(host).details["rotated"] == 0
    assert names(logs) == {"app.log"}
    assert (tree / "state" / STATE).exists() and not list(logs.glob("*state*"))

    a_day_passes(tree)
    first = rotate(host)
    assert names(logs) == {"app.log.1"}  # no create, no copytruncate: the program makes it
    write(logs / "app.log", "day 1\n")
    again = rotate(host)

    assert (first.status, first.details["rotated"]) == ("changed", 1)
    assert (again.status, again.details["rotated"]) == ("ok", 0)
    assert again.details["rules"][0]["kept"] == [
        {"path": str(logs / "app.log"), "reason": "rotated today"}
    ]
    assert (logs / "app.log.1").read_text() == "day 0\n"

    forced = rotate(host, force=True)
    assert forced.details["rotated"] == 1
    assert (logs / "app.log.2").read_text() == "day 0\n"
    assert (logs / "app.log.1").read_text() == "day 1\n"


def test_keep_count_delay_compress_and_create_mode_and_owner(tree: Path, tmp_path: Path) -> None:
    """keep 2 with delay_compress: .1 plain, .2.gz compressed, nothing beyond; the new live
    file gets create's mode and owner, rotated ones keep the live file's (0600 root)."""
    logs = tree / "logs"
    host = local_host(
        tree,
        tmp_path,
        [rule(tree, keep=2, compress="gz", delay_compress=True, create="0644 nobody nogroup")],
    )
    write(logs / "app.log", "first\n")
    (logs / "app.log").chmod(0o600)
    for text in ("second\n", "third\n", "fourth\n"):
        assert rotate(host, force=True).details["rotated"] == 1
        write(logs / "app.log", text)

    assert names(logs) == {"app.log", "app.log.1", "app.log.2.gz"}
    assert (logs / "app.log").read_text() == "fourth\n"
    assert (logs / "app.log.1").read_text() == "third\n"
    assert gzip.decompress((logs / "app.log.2.gz").read_bytes()) == b"second\n"
    live = (logs / "app.log").stat()
    assert (live.st_uid, live.st_gid, stat.S_IMODE(live.st_mode)) == (
        NOBODY.pw_uid,
        NOBODY.pw_gid,
        0o644,
    )
    # The rotated files were live files created by `create`; the first one was root's 0600.
    write(logs / "app.log", "")
    rotate(host, force=True)
    oldest = (logs / "app.log.2.gz").stat()
    assert (oldest.st_uid, stat.S_IMODE(oldest.st_mode)) == (NOBODY.pw_uid, 0o644)


def test_compressed_copy_keeps_the_rotated_files_mode_and_owner(tree: Path, tmp_path: Path) -> None:
    logs = tree / "logs"
    write(logs / "app.log", "secret\n")
    os.chown(logs / "app.log", NOBODY.pw_uid, NOBODY.pw_gid)
    (logs / "app.log").chmod(0o600)
    host = local_host(tree, tmp_path, [rule(tree, compress="zstd", create="0640 root root")])

    assert rotate(host, force=True).details["rotated"] == 1

    assert names(logs) == {"app.log", "app.log.1.zst"}
    copy = (logs / "app.log.1.zst").stat()
    assert (copy.st_uid, copy.st_gid, stat.S_IMODE(copy.st_mode)) == (
        NOBODY.pw_uid,
        NOBODY.pw_gid,
        0o600,
    )
    assert (
        subprocess.run(
            ["zstd", "-dc", str(logs / "app.log.1.zst")], capture_output=True, check=True
        ).stdout
        == b"secret\n"
    )
    live = (logs / "app.log").stat()
    assert (live.st_uid, stat.S_IMODE(live.st_mode), live.st_size) == (0, 0o640, 0)


def test_copytruncate_keeps_the_live_inode_and_empties_it(tree: Path, tmp_path: Path) -> None:
    logs = tree / "logs"
    write(logs / "app.log", "before\n")
    inode = (logs / "app.log").stat().st_ino
    host = local_host(tree, tmp_path, [rule(tree, copytruncate=True)])

    assert rotate(host, force=True).details["rotated"] == 1

    assert (logs / "app.log").stat().st_ino == inode
    assert (logs / "app.log").stat().st_size == 0
    assert (logs / "app.log.1").read_text() == "before\n"


def test_missing_ok_and_not_if_empty_even_when_forced(tree: Path, tmp_path: Path) -> None:
    """No match fails without missing_ok; an empty live file never rotates with not_if_empty."""
    logs = tree / "logs"
    strict = local_host(tree, tmp_path, [rule(tree)])
    failed = rotate(strict, force=True)
    assert failed.status == "failed" and "no file matches" in (failed.error or "")

    lenient = local_host(tree, tmp_path, [rule(tree, missing_ok=True, not_if_empty=True)])
    assert rotate(lenient, force=True).status == "ok"
    (logs / "empty.log").touch()
    write(logs / "full.log", "x\n")
    result = rotate(lenient, force=True)

    assert result.details["rotated"] == 1
    assert names(logs) == {"empty.log", "full.log.1"}
    assert result.details["rules"][0]["kept"][0]["reason"] == "empty (not_if_empty)"


def test_date_ext_names_rotated_files_by_the_hosts_date(tree: Path, tmp_path: Path) -> None:
    logs = tree / "logs"
    write(logs / "app.log", "dated\n")
    write(logs / "app.log-20200101.gz", "")  # beyond keep 2 once today's is made: deleted
    write(logs / "app.log-20200102.gz", "")
    host = local_host(tree, tmp_path, [rule(tree, keep=2, date_ext=True, compress="gz")])

    assert rotate(host, force=True).details["rotated"] == 1
    today = datetime.now().astimezone().strftime("%Y%m%d")
    assert names(logs) == {"app.log-20200102.gz", f"app.log-{today}.gz"}
    assert gzip.decompress((logs / f"app.log-{today}.gz").read_bytes()) == b"dated\n"

    write(logs / "app.log", "twice a day\n")
    second = rotate(host, force=True)
    assert second.details["rotated"] == 0
    assert "already rotated today" in second.details["rules"][0]["kept"][0]["reason"]
    assert (logs / "app.log").read_text() == "twice a day\n"


def test_postrotate_runs_once_per_rule_and_its_exit_status_is_reported(
    tree: Path, tmp_path: Path
) -> None:
    logs, runs = tree / "logs", tree / "runs"
    for name in ("a.log", "b.log", "c.log"):
        write(logs / name, "x\n")
    command = f"echo ran >> {runs}; echo 'reload failed' >&2; exit 3"
    host = local_host(tree, tmp_path, [rule(tree, postrotate=command)])

    result = rotate(host, force=True)

    assert runs.read_text() == "ran\n"
    assert result.status == "failed" and "postrotate exited 3" in (result.error or "")
    assert result.details["rules"][0]["postrotate"] == [{"exit": 3, "output": "reload failed"}]
    assert result.details["rotated"] == 3


def test_runbook_snippets_import_as_they_are() -> None:
    """Both runbooks' logrotate files, verbatim, become the rules they describe."""
    [birthday] = parse_logrotate((FIXTURES / "birthday-scheduler").read_text(), "/etc/b")
    [analytics] = parse_logrotate((FIXTURES / "analytics").read_text(), "/etc/a")

    assert (birthday.cadence, birthday.keep, analytics.keep) == ("daily", 30, 14)
    for imported in (birthday, analytics):
        assert imported.compress == "gz" and imported.delay_compress
        assert imported.missing_ok and imported.not_if_empty and not imported.shared_scripts
    assert (birthday.create.mode, birthday.create.owner, birthday.create.group) == (
        0o644,
        "app",
        "app",
    )
    assert (analytics.create.mode, analytics.create.owner) == (0o644, "analytics")
    assert birthday.postrotate == (
        "docker kill -s USR1 $(docker ps -q --filter name=birthday-scheduler)"
    )
    assert birthday.globs[0].text == "/var/log/birthday-scheduler/*.log"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/srv/a/*.log {\n  daily\n  olddir /srv/old\n}\n", "x:3: directive 'olddir /srv/old'"),
        ("/srv/a/*.log {\n  prerotate\n  endscript\n}\n", "x:2: directive 'prerotate'"),
        ("include /etc/logrotate.d\n", "x:1: directive 'include /etc/logrotate.d'"),
        ("/srv/a/*.log {\n  compress\n  compresscmd bzip2\n}\n", "x:1: compresscmd 'bzip2'"),
        ("/srv/a/*.log {\n  create 0999 a b\n}\n", "x:2: create 0999 a b: mode '0999'"),
        ("/srv/a/*.log {\n  rotate many\n}\n", "x:2: expected a whole number"),
        ("/var/*.log {\n  daily\n}\n", "x:1: path '/var/*.log' works directly in the system"),
        ("/srv/a/*.log {\n  daily\n", "x:1: the block has no closing '}'"),
    ],
)
def test_unsupported_logrotate_directives_are_refused_naming_line(text: str, says: str) -> None:
    with pytest.raises(Exception, match=r".*") as caught:
        parse_logrotate(text, "x")
    assert says in str(caught.value)


def test_braces_several_globs_and_per_file_postrotate_without_sharedscripts(
    tree: Path, tmp_path: Path
) -> None:
    """An imported block without sharedscripts runs postrotate once per rotated file, with
    the file as $1, as logrotate does; braces and two globs on one line are expanded."""
    logs, runs = tree / "logs", tree / "runs"
    for name in ("api.log", "worker.log", "other.log"):
        write(logs / name, "x\n")
    config = tree / "app.conf"
    config.write_text(
        f"# the app's logs\n{logs}/{{api,worker}}.log {logs}/none.log {{\n"
        "    weekly\n    rotate 4\n    missingok\n"
        f'    postrotate\n        echo "$1" >> {runs}\n    endscript\n}}\n'
    )
    host = local_host(tree, tmp_path, [{"logrotate": str(config)}])

    result = rotate(host, force=True)

    assert result.details["rotated"] == 2
    assert names(logs) == {"api.log.1", "worker.log.1", "other.log"}
    assert sorted(runs.read_text().split()) == [str(logs / "api.log"), str(logs / "worker.log")]
    assert [p["exit"] for p in result.details["rules"][0]["postrotate"]] == [0, 0]


def test_an_interrupted_run_is_finished_by_the_next_without_rotating_twice(
    tree: Path, tmp_path: Path
) -> None:
    """The first rule's postrotate kills the journal (once): the second rule's files are not
    rotated yet and the state is the old one. The next run finishes the journal: every file
    rotated exactly once, the killed postrotate run again, nothing lost."""
    first, second = tree / "logs", tree / "other"
    second.mkdir()
    write(first / "a.log", "a\n")
    write(second / "b.log", "b\n")
    flag = tree / "killed-once"
    # Kill the nearest ancestor running the journal (never anything else).
    killer = (
        f"[ -e {flag} ] && exit 0; touch {flag}; p=$PPID\n"
        'while [ "$p" -gt 1 ]; do\n'
        '  case $(tr "\\0" " " < /proc/$p/cmdline) in\n'
        '    *logs-rotate.*.journal*) kill -9 "$p"; exit;;\n'
        "  esac\n"
        '  p=$(ps -o ppid= -p "$p" | tr -d " ")\n'
        "done"
    )
    rules = [
        rule(tree, compress="gz", postrotate=killer),
        {"path": f"{second}/*.log", "rotate": "daily", "keep": 3},
    ]
    host = local_host(tree, tmp_path, rules)
    rotate(host)  # records both files
    a_day_passes(tree)
    state_before = (tree / "state" / STATE).read_text()

    interrupted = rotate(host)

    assert interrupted.status == "failed" and "next run finishes it" in (interrupted.error or "")
    assert names(first) == {"a.log.1"}  # renamed; its compression comes after the postrotate
    assert names(second) == {"b.log"}
    assert (tree / "state" / STATE).read_text() == state_before
    assert state_files("local1").journal in names(tree / "state")

    finished = rotate(host)

    assert finished.details["resumed"] is True
    assert names(first) == {"a.log.1.gz"}
    assert gzip.decompress((first / "a.log.1.gz").read_bytes()) == b"a\n"
    assert names(second) == {"b.log.1"}
    assert names(tree / "state") == {STATE, state_files("local1").lock}
    assert rotate(host).details["rotated"] == 0  # both rotated today: not again


def test_an_unknown_owner_fails_the_rotation_before_anything_moved(
    tree: Path, tmp_path: Path
) -> None:
    """create's owner is checked by making the new file aside first: the host says the user
    is unknown, the file and its copies stay as they were, the other file rotates."""
    logs = tree / "logs"
    write(logs / "app.log", "x\n")
    write(logs / "app.log.1", "older\n")
    write(tree / "logs" / "ok.log", "y\n")
    rules = [
        {"path": f"{logs}/app.log", "rotate": "daily", "keep": 3, "create": "0644 no-such-user7"},
        {"path": f"{logs}/ok.log", "rotate": "daily", "keep": 3},
    ]
    host = local_host(tree, tmp_path, rules)

    result = rotate(host, force=True)

    assert result.status == "failed" and "no-such-user7" in (result.error or "")
    assert names(logs) == {"app.log", "app.log.1", "ok.log.1"}
    assert (logs / "app.log.1").read_text() == "older\n"
    assert [r["failed"] for r in result.details["rules"]] == [1, 0]


def journals_running(journal: Path) -> int:
    """How many processes run JOURNAL (python3 JOURNAL fresh), from /proc."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        count += os.fsencode(journal) in words
    return count


def test_two_runs_at_once_rotate_once(tree: Path, tmp_path: Path) -> None:
    """The first run's journal holds the host's lock through its postrotate; the second,
    which listed the same due file meanwhile, waits, finds the state replaced and changes
    nothing: the file rotates once."""
    logs, started, go = tree / "logs", tree / "started", tree / "go"
    write(logs / "app.log", "once\n")
    hold = f"touch {started}; while [ ! -e {go} ]; do sleep 0.05; done"
    host = local_host(tree, tmp_path, [rule(tree, create="0644", postrotate=hold)])
    rotate(host)
    a_day_passes(tree)
    command = ["maint", "logs.rotate", "-i", str(tmp_path / "inventory.yaml"), "--json"]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def wait_for(condition) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    first = start()
    wait_for(started.exists)  # the first journal is in its postrotate, holding the lock
    second = start()
    journal = tree / "state" / state_files("local1").journal
    wait_for(lambda: journals_running(journal) == 2)  # the second journal waits for it
    go.touch()
    documents = [
        json.loads(run.communicate(timeout=60)[0])["results"][0] for run in (first, second)
    ]

    assert [d["status"] for d in documents] == ["changed", "ok"]
    assert documents[1]["details"]["rules"][0]["kept"][0]["reason"] == "rotated today"
    assert names(logs) == {"app.log", "app.log.1"}
    assert (logs / "app.log.1").read_text() == "once\n"


def test_a_plan_made_from_a_state_since_replaced_changes_nothing(
    tree: Path, tmp_path: Path
) -> None:
    """A run listed the host, then another rotated and replaced the state: this run's
    journal finds the state it was planned from gone and does nothing."""
    logs = tree / "logs"
    write(logs / "app.log", "x\n")
    host = local_host(tree, tmp_path, [rule(tree)])
    rotate(host)
    rules = host_rules(host, {})
    state_dir, files = state_dir_shell(host.settings.state_dir), state_files("local1")
    runner = LocalRunner(host)
    listing = list_host(runner, rules, state_dir, files)
    plans, state = plan_rules(rules, listing, force=True)

    a_day_passes(tree)  # another run writes the state meanwhile
    with pytest.raises(CommandError, match=r"another logs\.rotate run on this host changed"):
        carry_out(runner, state_dir, files, listing, plans, state)

    assert names(logs) == {"app.log"}
    assert names(tree / "state") == {STATE, files.lock}


def test_dry_run_prints_the_plan_per_file_and_changes_nothing(tree: Path, tmp_path: Path) -> None:
    logs = tree / "logs"
    write(logs / "app.log", "x\n")
    write(logs / "app.log.1", "y\n")
    host = local_host(tree, tmp_path, [rule(tree, compress="gz", create="0644", postrotate="true")])
    rotate(host)
    a_day_passes(tree)
    before = {name: (logs / name).stat().st_mtime_ns for name in names(logs)}
    state = (tree / "state" / STATE).read_bytes()

    result = rotate(host, dry_run=True)

    assert {name: (logs / name).stat().st_mtime_ns for name in names(logs)} == before
    assert (tree / "state" / STATE).read_bytes() == state
    assert [(row["action"], row["detail"]) for row in result.details["rows"]] == [
        ("rename", f"rename {logs}/app.log.1 -> {logs}/app.log.2"),
        ("rename", f"rename {logs}/app.log -> {logs}/app.log.1"),
        ("create", f"create {logs}/app.log (0644)"),
        ("compress", f"compress {logs}/app.log.1 -> {logs}/app.log.1.gz"),
        ("postrotate", "true"),
    ]


def test_logs_clean_recognises_rotated_names_and_spares_live_files_of_rotating_rules(
    tree: Path, tmp_path: Path
) -> None:
    """delete_after 14d: numbered and dated copies go; a rotating rule's live file stays
    however old, a cleaning rule's old live file goes as before."""
    from maintenance.logs import CleanOptions, clean_host

    rotating, cleaning = tree / "logs", tree / "plain"
    cleaning.mkdir()
    old = ["app.log.1", "app.log.2.gz", "app.log-20261101", "app.log-20261102.gz", "app.log"]
    for directory in (rotating, cleaning):
        for name in [*old, "app.log.3.gz-not-ours", "fresh.log.1"]:
            write(directory / name, "x\n")
            age = 0 if name.startswith("fresh") else 20 * DAY
            stamp = (directory / name).stat().st_mtime - age
            os.utime(directory / name, (stamp, stamp))
    rules = [rule(tree, delete_after="14d"), {"path": f"{cleaning}/*.log", "delete_after": "14d"}]
    host = local_host(tree, tmp_path, rules)

    [result] = run_procedure("logs.clean", clean_host, [host], CleanOptions())

    assert result.details["deleted"] == 9
    assert names(rotating) == {"app.log", "app.log.3.gz-not-ours", "fresh.log.1"}
    assert names(cleaning) == {"app.log.3.gz-not-ours", "fresh.log.1"}


def maint_rotate(inventory: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["maint", "logs.rotate", "-i", str(inventory), "--json", *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )


def hand_to_fleet(top: Path) -> None:
    user = pwd.getpwnam("fleet")
    for root, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid)
    os.chown(top, user.pw_uid, user.pw_gid)


def test_imported_snippet_rotates_over_ssh_and_a_refused_one_stops_every_host(
    ssh_fleet, tree: Path, tmp_path: Path
) -> None:
    """node01 imports the birthday runbook's snippet (its paths and owner made local), node02
    a file with `olddir`: exit 2 naming file, line and directive, nothing rotated on node01
    even with --force. With node02's file fixed, both rotate over SSH, one pass each."""
    fleet = pwd.getpwnam("fleet")
    snippet = (FIXTURES / "birthday-scheduler").read_text()
    good = tree / "birthday.conf"
    good.write_text(
        snippet.replace("/var/log/birthday-scheduler", str(tree / "logs"))
        .replace("app app", "fleet fleet")
        .replace("docker kill -s USR1 $(docker ps -q --filter name=birthday-scheduler)",
                 f"echo reopened >> {tree}/runs")
    )  # fmt: skip
    bad = tree / "bad.conf"
    bad.write_text(f"{tree}/other/*.log {{\n    daily\n    olddir {tree}/old\n}}\n")
    (tree / "other").mkdir()
    write(tree / "logs" / "app.log", "birthday\n")
    write(tree / "other" / "b.log", "other\n")
    hand_to_fleet(tree)
    node01, node02 = (host.name for host in ssh_fleet.hosts[:2])
    hosts = fleet_hosts(ssh_fleet)
    inventory = write_inventory(
        tmp_path / "inventory.yaml",
        {
            node01: hosts[node01] | {"logs": [{"logrotate": str(good)}]},
            node02: hosts[node02] | {"logs": [{"logrotate": str(bad)}]},
        },
        all_vars=fleet_vars(ssh_fleet) | {"state_dir": str(tree / "state")},
    )

    refused = maint_rotate(inventory, "--force")

    assert refused.returncode == 2, refused.stderr
    assert f"host '{node02}': logs[0].logrotate: {bad}:3: directive 'olddir" in refused.stderr
    assert names(tree / "logs") == {"app.log"} and not list((tree / "state").iterdir())

    bad.write_text(f"{tree}/other/*.log {{\n    daily\n    rotate 1\n}}\n")
    done = maint_rotate(inventory, "--force")

    assert done.returncode == 0, done.stderr
    results = {r["host"]: r for r in json.loads(done.stdout)["results"]}
    assert {name: r["status"] for name, r in results.items()} == {
        node01: "changed",
        node02: "changed",
    }
    assert names(tree / "logs") == {"app.log", "app.log.1"}
    assert (tree / "logs" / "app.log").stat().st_uid == fleet.pw_uid
    assert names(tree / "other") == {"b.log.1"}
    assert (tree / "runs").read_text() == "reopened\n"
    assert results[node01]["details"]["rules"][0]["postrotate"] == [{"exit": 0, "output": ""}]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


@pytest.mark.parametrize(
    ("keys", "last", "now", "size", "due"),
    [
        ({"cadence": "daily"}, "2026-12-05 23:59", "2026-12-06 00:01", 10, True),
        ({"cadence": "daily"}, "2026-12-06 00:01", "2026-12-06 23:59", 10, False),
        # weekly as logrotate 3.21: 7 calendar days, or a Sunday after another day
        ({"cadence": "weekly"}, "2026-11-29 10:02", "2026-12-06 09:02", 10, True),
        ({"cadence": "weekly"}, "2026-12-04 10:00", "2026-12-07 09:00", 10, False),
        ({"cadence": "weekly"}, "2026-12-05 10:00", "2026-12-06 09:00", 10, True),
        ({"cadence": "monthly"}, "2026-11-30 23:00", "2026-12-01 01:00", 10, True),
        ({"cadence": "monthly"}, "2026-12-01 01:00", "2026-12-31 23:00", 10, False),
        # more than 25 hours in the future rotates at once; less compares dates
        ({"cadence": "monthly"}, "2026-12-08 00:00", "2026-12-06 09:00", 10, True),
        ({"cadence": "weekly"}, "2026-12-07 00:00", "2026-12-06 09:00", 10, False),
        ({"cadence": "daily", "minsize": 100}, "2026-12-05 09:00", "2026-12-06 09:00", 99, False),
        ({"cadence": "daily", "maxsize": 100}, "2026-12-06 08:00", "2026-12-06 09:00", 101, True),
        ({"size": 100}, "2026-12-06 08:00", "2026-12-06 09:00", 100, True),
        ({"size": 100}, "2026-12-01 08:00", "2026-12-06 09:00", 99, False),
        (
            {"cadence": "daily", "not_if_empty": True},
            "2026-12-01 08:00",
            "2026-12-06 09:00",
            0,
            False,
        ),
    ],
)
def test_when_a_file_is_due_follows_logrotate(
    keys: dict[str, Any], last: str, now: str, size: int, due: bool
) -> None:
    """Cadences on the host's calendar (UTC here), minsize, maxsize, size and notifempty."""
    from maintenance.logs.plan import LogFile
    from maintenance.logs.rotate_plan import Clock, is_due
    from maintenance.logs.rotation import Glob, RotateRule

    rule = RotateRule("logs[0]", (Glob.parse("/srv/app/*.log"),), 3, **keys)
    live = LogFile(b"/srv/app/a.log", "f", size, 0.0)
    assert is_due(rule, live, _utc(last), Clock(_utc(now)), force=False)[0] is due
