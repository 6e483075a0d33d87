"""The `backup`, `retention`, `restore`, `restore_target` and `restore_checks` settings.

Broken inventories go through the real `maint` command for every task that reads the section
(tests/settings_cases.py says what a refusal must look like); the positive tests prune a real
store with the new keep_within grammar and check what the dry runs say.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backups.stores import open_store
from maintenance.errors import ConfigError
from maintenance.settings import parse_age
from maintenance.settings.backup import STORAGE_CLASSES
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli
from tests.settings_cases import Case, assert_refused, task_args

BACKUP_TASKS = (
    "backup.db", "backup.globals", "backup.list", "backup.prune",
    "restore.verify", "restore.db", "health.check",
)  # fmt: skip
RETENTION_TASKS = ("backup.db", "backup.prune")
RESTORE_TASKS = ("restore.verify", "restore.db")
# Copies (backup.store a list): every task opening the stores reads the same field.
COPY_TASKS = ("backup.db", "backup.list", "health.check")

CASES = [
    Case("store-typo", {"backup": {"stor": "s3://prod/pg"}},
         "backup.stor: unknown key 'stor'; did you mean 'store'?", BACKUP_TASKS),
    Case("retention-typo", {"backup": {"retension": {"keep_daily": 7}}},
         "backup.retension: unknown key 'retension'; did you mean 'retention'?", BACKUP_TASKS),
    Case("keep-daily-typo", {"backup": {"retention": {"keep_dayly": 7}}},
         "backup.retention.keep_dayly: unknown key 'keep_dayly'; did you mean 'keep_daily'?",
         RETENTION_TASKS),
    Case("section-typo", {"bakup": {"store": "/srv/backups"}},
         "bakup: unknown key; did you mean 'backup'?", BACKUP_TASKS),
    Case("backup-not-mapping", {"backup": "s3://prod/pg"},
         "backup: expected a mapping of keys, got the string 's3://prod/pg'", BACKUP_TASKS),
    Case("ratio-range", {"backup": {"min_size_ratio": 1.5}},
         "backup.min_size_ratio: expected at most 1", BACKUP_TASKS),
    Case("ratio-bool", {"backup": {"min_size_ratio": True}},
         "backup.min_size_ratio: expected a number, got true (a yes/no value)", BACKUP_TASKS),
    Case("codec", {"backup": {"codec": "lz4"}}, "backup.codec: expected one of", BACKUP_TASKS),
    Case("level", {"backup": {"codec": "gz", "level": 12}},
         "backup.level: expected a gz level from 1 to 9, got 12", BACKUP_TASKS),
    Case("level-none", {"backup": {"codec": "none", "level": 3}},
         "backup.level: codec 'none' takes no level", BACKUP_TASKS),
    Case("size", {"backup": {"exact_count_max_size": "lots"}},
         "backup.exact_count_max_size: expected a size like 500MB", BACKUP_TASKS),
    Case("s3-option-on-file-store", {"backup": {"region": "eu-west-1"}},
         "backup.region: applies to s3:// stores only, not to file://", BACKUP_TASKS),
    Case("grace", {"backup": {"incomplete_grace": "soon"}},
         "backup.incomplete_grace: expected a duration like", BACKUP_TASKS),
    Case("keep-within-m", {"backup": {"retention": {"keep_within": "6m"}}},
         "backup.retention.keep_within: ambiguous: write 6min or 6mo", RETENTION_TASKS),
    Case("keep-within-bare", {"backup": {"retention": {"keep_within": 30}}},
         "backup.retention.keep_within: ambiguous: write 30min or 30mo", RETENTION_TASKS),
    Case("empty-policy", {"backup": {"retention": {"keep_daily": 0}}},
         "backup.retention: no keep rule is set", RETENTION_TASKS),
    Case("negative-count", {"backup": {"retention": {"keep_last": -3}}},
         "backup.retention.keep_last: expected at least -1, got -3", RETENTION_TASKS),
    Case("retention-string", {"backup": {"retention": "keep 7 days"}},
         "backup.retention: expected a mapping of keys", RETENTION_TASKS),
    Case("group-restore", {"restore": {"count_tolerance": "ten"}},
         "restore.count_tolerance: expected a number, got 'ten'", RESTORE_TASKS, on_group=True),
    Case("restore-typo", {"restore": {"tmpdir": "/srv/tmp"}},
         "restore.tmpdir: unknown key 'tmpdir'; did you mean 'tmp_dir'?", RESTORE_TASKS),
    Case("tolerance-text", {"restore": {"count_tolerance": "ten"}},
         "restore.count_tolerance: expected a number, got 'ten'", RESTORE_TASKS),
    Case("tolerance-range", {"restore": {"count_tolerance": 10}},
         "restore.count_tolerance: expected at most 1", RESTORE_TASKS),
    Case("keep-failed", {"restore": {"keep_failed": "yes"}},
         "restore.keep_failed: expected true or false", ("restore.verify",)),
    Case("checks-string", {"restore_checks": "SELECT 1"},
         "restore_checks: expected a list, got the string 'SELECT 1'", ("restore.verify",)),
    Case("check-without-sql", {"restore_checks": [{"name": "rows", "min": 1}]},
         "restore_checks[0].sql: required key is missing", ("restore.verify",)),
    Case("check-key-typo", {"restore_checks": [{"sql": "SELECT 1", "minimum": 1}]},
         "restore_checks[0].minimum: unknown key 'minimum'", ("restore.verify",)),
    Case("target-list", {"restore_target": ["staging1"]},
         "restore_target: expected text, got a list", ("restore.verify",)),
]  # fmt: skip

# What the stores alone used to check, when a task opened one (so `config.check` passed them),
# and what the inventory as a whole must hold: refused at load like any other setting.
S3 = "s3://bucket1/p"
STORE_CASES = [
    Case("bucket-name", {"backup": {"store": "s3://Bucket2/p"}},
         "backup.store: bucket name 'Bucket2' is not valid", BACKUP_TASKS),
    Case("store-credentials", {"backup": {"store": "s3://key:hunter22@bucket1/p"}},
         "backup.store: credentials do not belong in the store URL", BACKUP_TASKS),
    Case("store-prefix", {"backup": {"store": "gs://bucket1/pg/../other"}},
         "backup.store: invalid store prefix 'pg/../other'", BACKUP_TASKS),
    Case("file-store-host", {"backup": {"store": "file://backups/pg"}},
         "backup.store: use file:///absolute/path", BACKUP_TASKS),
    Case("s3-part-size", {"backup": {"store": S3, "part_size": "1KB"}},
         "backup.part_size: expected 5.0 MiB to 5.0 GiB for s3:// stores, got 1000 B",
         BACKUP_TASKS),
    Case("gs-part-size", {"backup": {"store": "gs://bucket1/p", "part_size": "2GiB"}},
         "backup.part_size: expected 256.0 KiB to 1.0 GiB for gs:// stores, got 2.0 GiB",
         BACKUP_TASKS),
    Case("s3-storage-class", {"backup": {"store": S3, "storage_class": "BOGUS"}},
         "backup.storage_class: expected one of STANDARD, ", BACKUP_TASKS),
    Case("gs-storage-class", {"backup": {"store": "gs://bucket1/p", "storage_class": "GLACIER"}},
         "backup.storage_class: expected one of STANDARD, NEARLINE, COLDLINE, ARCHIVE for gs://",
         BACKUP_TASKS),
    Case("endpoint-credentials",
         {"backup": {"store": S3, "endpoint_url": "https://key:hunter22@minio.internal:9000"}},
         "backup.endpoint_url: credentials do not belong in the endpoint URL", BACKUP_TASKS),
    Case("endpoint-form", {"backup": {"store": S3, "endpoint_url": "minio.internal:9000"}},
         "backup.endpoint_url: expected an http:// or https:// URL with a host", BACKUP_TASKS),
    Case("max-attempts", {"backup": {"store": S3, "max_attempts": 21}},
         "backup.max_attempts: expected at most 20, got 21", BACKUP_TASKS),
    Case("max-attempts-zero", {"backup": {"store": S3, "max_attempts": 0}},
         "backup.max_attempts: expected at least 1, got 0", BACKUP_TASKS),
    Case("retry-timeout", {"backup": {"store": "gs://bucket1/p", "retry_timeout": 7200}},
         "backup.retry_timeout: expected at most 3600, got 7200", BACKUP_TASKS),
    Case("stores-empty", {"backup": {"store": []}},
         "backup.store: expected at least one store, got an empty list", COPY_TASKS),
    Case("stores-twice", {"backup": {"store": ["/srv/backups", S3, "/srv/backups/"]}},
         "backup.store: '/srv/backups/' is listed twice (as '/srv/backups'): one copy per store",
         COPY_TASKS),
    Case("stores-wrong-type", {"backup": {"store": {"url": S3}}},
         "backup.store: expected a store URL or a list of store URLs", COPY_TASKS),
    Case("stores-item-type", {"backup": {"store": [S3, 7]}},
         "backup.store: expected each store to be a URL or directory, got 7", COPY_TASKS),
    Case("stores-bad-bucket", {"backup": {"store": ["/srv/backups", "s3://Bucket2/p"]}},
         "backup.store: s3://Bucket2/p: bucket name 'Bucket2' is not valid", COPY_TASKS),
    Case("stores-scheme-typo", {"backup": {"store": ["/srv/backups", "s4://bucket1/p"]}},
         "backup.store: s4://bucket1/p: unknown store scheme 's4'", COPY_TASKS),
    Case("stores-option-of-none", {"backup": {"store": ["/srv/a", "gs://bucket1/p"],
                                              "region": "eu-west-1"}},
         "backup.region: applies to s3:// stores only, not to file:// or gs://", COPY_TASKS),
    Case("stores-part-size", {"backup": {"store": [S3, "gs://bucket1/p"], "part_size": "2GiB"}},
         "backup.part_size: expected 256.0 KiB to 1.0 GiB for gs:// stores", COPY_TASKS),
    Case("stores-part-size-s3", {"backup": {"store": [S3, "gs://bucket1/p"],
                                            "part_size": "1MiB"}},
         "backup.part_size: expected 5.0 MiB to 5.0 GiB for s3:// stores, got 1.0 MiB",
         COPY_TASKS),
    Case("grace-zero", {"backup": {"incomplete_grace": 0}},
         "backup.incomplete_grace: expected at least 1h, got 0s", BACKUP_TASKS),
    Case("grace-second", {"backup": {"incomplete_grace": "1s"}},
         "backup.incomplete_grace: expected at least 1h, got 1s", BACKUP_TASKS),
    Case("target-unknown", {"restore_target": "nosuchhost"},
         "restore_target: no host 'nosuchhost' in the inventory", ("restore.verify", "backup.db")),
    Case("target-typo", {"restore_target": "db3"},
         "restore_target: no host 'db3' in the inventory; did you mean 'db2'?",
         ("restore.verify",)),
    Case("group-target", {"restore_target": "nosuchhost"},
         "restore_target: no host 'nosuchhost' in the inventory", ("restore.verify",),
         on_group=True),
]  # fmt: skip
CASES += STORE_CASES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_setting_is_refused_by_every_task_reading_it(tmp_path: Path, case: Case) -> None:
    """Exit 2 (3 for health.check), host or group and key path said, nothing written."""

    for task in case.tasks:
        where = tmp_path / task
        where.mkdir()
        assert_refused(where, case, task)


@pytest.mark.parametrize("case", STORE_CASES, ids=[case.id for case in STORE_CASES])
def test_config_check_refuses_what_the_tasks_refuse(tmp_path: Path, case: Case) -> None:
    """`maint config.check` says no to every inventory a backup task refuses (exit 2, the
    file, the host or group and the key path), never "settings valid"; no secret is shown."""
    done = assert_refused(tmp_path, case, "config.check")
    assert "settings valid" not in done.stdout and "hunter22" not in done.stderr


def test_a_store_given_as_a_flag_is_checked_by_the_same_rules(tmp_path: Path) -> None:
    """restore.db --store (open_store) refuses what the inventory's `backup.store` would."""
    with pytest.raises(ConfigError, match="bucket name 'Bucket2' is not valid"):
        open_store("s3://Bucket2/p")
    with pytest.raises(ConfigError) as caught:
        open_store("s3://bucket1/p", {"part_size": "1KB", "storage_class": "BOGUS"})
    assert "option 'part_size': expected 5.0 MiB to 5.0 GiB for s3:// stores" in str(caught.value)
    assert "option 'storage_class': expected one of STANDARD" in str(caught.value)
    host = {"ansible_connection": "local", "postgres": {"dsn": "postgresql://localhost/app"}}
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, _, err = maint(
        *task_args("restore.db"), "--store", "s3://Bucket2/p", "-i", str(inventory)
    )
    assert code == 2 and "bucket name 'Bucket2' is not valid" in err and "Traceback" not in err


def test_s3_storage_classes_are_the_ones_botocore_knows() -> None:
    """Every S3 storage class the model accepts (the settings import no SDK) is one S3 knows.

    botocore's list only grows (a newer one has classes such as AWS_BACKUP_WARM): a class
    missing here is refused with the list, never sent to S3 unchecked.
    """
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    assert set(STORAGE_CLASSES["s3"]) <= set(model.shape_for("StorageClass").enum)


# --- what the tasks do with good settings -------------------------------------------------------


def maint(*args: str) -> tuple[int, str, str]:
    done = run_maint_cli(list(args))
    return done.returncode, done.stdout, done.stderr


def monthly_history(store_dir: Path, newest: datetime, months: int) -> list[datetime]:
    """Complete backups of db1/app in a real local store: NEWEST and one per month before it."""
    store = open_store(str(store_dir))
    times = [parse_age(f"{n}mo", deletes=True).before(newest) for n in range(months + 1)]
    for time in times:
        key = f"db1/app/{time:%Y%m%dT%H%M%SZ}.dump.zst"
        store.put_bytes(key, b"not really a dump")
        store.put_bytes(key + ".manifest.json", b"{}")
    return times


def prune_inventory(tmp_path: Path, retention: dict) -> Path:
    host = {"ansible_connection": "local",
            "backup": {"store": str(tmp_path / "store"), "retention": retention}}  # fmt: skip
    return write_inventory(tmp_path / "inv.yaml", {"db1": host})


def stored_times(store_dir: Path) -> list[str]:
    return sorted(
        info.key.split("/")[2][:13]
        for info in open_store(str(store_dir)).list("db1/")
        if info.key.endswith(".manifest.json")
    )


def test_keep_within_12mo_keeps_a_calendar_year_and_the_dry_run_says_so(tmp_path: Path) -> None:
    """12mo counts calendar months from the newest backup, exclusive; the dry run states the
    cutoff as an age and a UTC date, plainly and in --json, and deletes nothing."""
    newest = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    times = monthly_history(tmp_path / "store", newest, 18)
    inventory = prune_inventory(tmp_path, {"keep_within": "12mo"})
    cutoff = parse_age("12mo", deletes=True).before(newest)
    says = f"keep_within 1 year: keeps backups after {cutoff:%Y-%m-%d %H:%M} UTC"

    code, out, err = maint("backup.prune", "-i", str(inventory), "--dry-run")
    assert code == 0, err
    assert says in out, out
    code, out, err = maint("backup.prune", "-i", str(inventory), "--dry-run", "--json")
    assert code == 0, err
    [database] = json.loads(out)["results"][0]["details"]["databases"]
    assert database["keep_within"] == {
        "age": "1 year", "cutoff": cutoff.isoformat(), "says": says
    }  # fmt: skip
    assert len(database["removed"]) == 7 and len(stored_times(tmp_path / "store")) == 19

    code, out, err = maint("backup.prune", "-i", str(inventory), "--json")
    assert code == 0, err
    kept = sorted(f"{time:%Y%m%dT%H%M}" for time in times if time > cutoff)
    assert stored_times(tmp_path / "store") == kept and len(kept) == 12


def test_keep_within_flag_uses_the_same_grammar(tmp_path: Path) -> None:
    """--keep-within 6m is refused as ambiguous before anything is touched; 6mo is months."""
    newest = datetime(2025, 8, 31, 12, tzinfo=UTC)
    monthly_history(tmp_path / "store", newest, 9)
    inventory = prune_inventory(tmp_path, {"keep_last": 1})
    code, _, err = maint("backup.prune", "-i", str(inventory), "--keep-within", "6m")
    assert code == 2 and "--keep-within: ambiguous: write 6min or 6mo" in err, err
    assert "Traceback" not in err and len(stored_times(tmp_path / "store")) == 10
    code, _, err = maint("backup.prune", "-i", str(inventory), "--keep-within", "6mo", "--json")
    assert code == 0, err
    # 6mo before 31 Aug is "31 Feb", 3 Mar as Go rolls it over; the history itself rolls too
    # (2mo before 31 Aug is 1 Jul), and the backup of exactly 3 Mar 12:00 is out (strict).
    assert stored_times(tmp_path / "store") == [
        "20250331T1200", "20250501T1200", "20250531T1200", "20250701T1200", "20250731T1200",
        "20250831T1200",
    ]  # fmt: skip


@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_backup_db_prune_without_a_policy_stops_before_any_dump(tmp_path: Path, dry_run) -> None:
    """backup.db --prune with no keep rule at all exits 2 before touching the store."""
    host = {"ansible_connection": "local", "backup": {"store": str(tmp_path / "store")}}
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, _, err = maint("backup.db", "--prune", *dry_run, "-i", str(inventory))
    assert code == 2 and "no keep rule is set" in err and "Traceback" not in err, err
    assert not (tmp_path / "store").exists()


def test_backup_db_prune_dry_run_states_the_cutoff(prod_cluster, tmp_path: Path) -> None:
    """The plan of backup.db --prune --dry-run says what keep_within will keep after the dump."""
    host = {
        "ansible_connection": "local",
        "postgres": {"dsn": prod_cluster.dsn(), "databases": ["postgres"]},
        "backup": {"store": str(tmp_path / "store"),
                   "retention": {"keep_daily": 7, "keep_within": "3mo"}},
    }  # fmt: skip
    inventory = write_inventory(tmp_path / "inv.yaml", {"db1": host})
    code, out, err = maint("backup.db", "--prune", "--dry-run", "-i", str(inventory), "--json")
    assert code == 0, err
    *dumps, plan = json.loads(out)["results"][0]["details"]["plan"]
    assert dumps == [f"db1/postgres -> {(tmp_path / 'store').as_uri()}"]
    assert plan.startswith("then prune: keep_daily 7, keep_within 3 months: keeps backups after ")
    assert plan.endswith(" UTC") and not (tmp_path / "store").exists()


def test_store_options_reach_only_the_copies_of_their_scheme() -> None:
    """backup.store as a list: each copy is opened with the options of its own scheme (an s3
    region next to a file store is the s3 copy's), in the order given; one store alone is
    the same as a list of one."""
    from maintenance.settings.backup import BackupSettings

    backup = BackupSettings.model_validate(
        {"store": ["/srv/a", "s3://bucket1/p", "gs://bucket2/q"], "region": "eu-west-1",
         "storage_class": "STANDARD", "part_size": "16MiB"}
    )  # fmt: skip
    local, on_s3, on_gcs = backup.copies()
    assert (local.store, local.region, local.part_size, local.storage_class) == (
        "/srv/a",
        None,
        None,
        None,
    )
    assert (on_s3.store, on_s3.region, on_s3.part_size) == (
        "s3://bucket1/p",
        "eu-west-1",
        16 * 2**20,
    )
    assert (on_gcs.store, on_gcs.region, on_gcs.storage_class) == (
        "gs://bucket2/q",
        None,
        "STANDARD",
    )
    assert BackupSettings.model_validate({"store": ["/srv/a"]}).store == "/srv/a"
