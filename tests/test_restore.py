"""Restore drills and the guarded real restore, on real prod and staging clusters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from backups.archive.manifest import Manifest
from backups.postgres.scratch import MARK
from backups.stores import open_store
from tests.backup_helpers import ODD_TABLE, make_sample_database, table_digests
from tests.inventories import fleet_vars, write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "drillshop"


@pytest.fixture(scope="module")
def shop(prod_cluster):
    make_sample_database(prod_cluster, DATABASE, rows=3000)
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def maint(*args: str) -> tuple[int, dict, str]:
    done = run_maint_cli([*args, "--json"])
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def scratch_databases(cluster) -> list[str]:
    rows = cluster.execute("SELECT datname FROM pg_database WHERE datname LIKE 'maint_verify_%'")
    return [row[0] for row in rows]


def drill_inventory(
    tmp_path: Path,
    prod,
    staging,
    store: str,
    *,
    source_conn=None,
    target_conn=None,
    all_vars=None,
    **source_vars,
) -> Path:
    hosts = {
        "prod1": {
            **(source_conn or {"ansible_connection": "local"}),
            "postgres": {"dsn": prod.dsn(), "databases": [DATABASE]},
            "backup": {"store": store},
            "restore_target": "staging1",
            "restore_checks": [
                {"name": "customers exist", "sql": "SELECT count(*) FROM customers", "min": 1},
                {
                    "name": "no orphan sku",
                    "sql": 'SELECT bool_and(sku IS NOT NULL) FROM sales."Order Items"',
                },
            ],
            **source_vars,
        },
        "staging1": {
            **(target_conn or {"ansible_connection": "local"}),
            "postgres": {"dsn": staging.dsn()},
        },
    }
    return write_inventory(tmp_path / "inv.yaml", hosts, all_vars=all_vars)


def backed_up(inventory: Path) -> str:
    code, report, stderr = maint("backup.db", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr
    return report["results"][0]["details"]["databases"][0]["key"]


def test_drill_passes_records_result_and_leaves_no_scratch_database(
    prod_cluster, staging_cluster, shop, tmp_path
):
    store_dir = tmp_path / "store"
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(store_dir))
    key = backed_up(inventory)
    code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr + json.dumps(report)
    [drill] = report["results"][0]["details"]["drills"]
    assert drill["ok"] and drill["key"] == key and drill["target"] == "staging1"
    assert {c["table"] for c in drill["counts"] if c["ok"]} >= {
        "public.customers",
        f"sales.{ODD_TABLE}",
    }
    assert [c["name"] for c in drill["checks"] if c["ok"]] == ["customers exist", "no orphan sku"]
    assert drill["restore_time_s"] > 0
    assert scratch_databases(staging_cluster) == []
    record = json.loads((store_dir / (key + ".verify.json")).read_text())
    assert record["ok"] and record["restore_time_s"] == drill["restore_time_s"]
    # local store, local target: fetched and checked first, then restored
    assert record["steps"]["restore_s"] == drill["restore_time_s"]
    code, listing, _ = maint("backup.list", "-i", str(inventory), "--limit", "prod1")
    assert listing["results"][0]["details"]["rows"][0]["drill"].startswith("passed")


def test_drill_over_ssh_from_s3(
    prod_cluster, staging_cluster, shop, ssh_fleet, s3_server, tmp_path
):
    """Target reached over SSH, backup read from S3: the drill passes and keeps with --keep."""
    boto3.client("s3", endpoint_url=s3_server.url).create_bucket(Bucket="drills")
    inventory = drill_inventory(
        tmp_path,
        prod_cluster,
        staging_cluster,
        "s3://drills/pg",
        backup={"store": "s3://drills/pg", "endpoint_url": s3_server.url},
        target_conn=ssh_fleet.hosts[3].inventory_vars(),
        all_vars=fleet_vars(ssh_fleet),
    )
    backed_up(inventory)
    code, report, stderr = maint(
        "restore.verify", "-i", str(inventory), "--limit", "prod1", "--keep"
    )
    assert code == 0, stderr + json.dumps(report)
    [drill] = report["results"][0]["details"]["drills"]
    assert drill["kept"] and scratch_databases(staging_cluster) == [drill["scratch_database"]]
    comment = staging_cluster.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (drill["scratch_database"],),
    )[0][0]
    assert comment == MARK
    assert table_digests(staging_cluster, drill["scratch_database"]) == table_digests(
        prod_cluster, DATABASE
    )
    staging_cluster.drop_database(drill["scratch_database"])


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_damaged_backup_fails_the_drill_naming_the_mismatch(
    prod_cluster, staging_cluster, shop, tmp_path, damage
):
    store_dir = tmp_path / "store"
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(store_dir))
    key = backed_up(inventory)
    data = store_dir / key
    if damage == "flip":
        content = bytearray(data.read_bytes())
        content[len(content) // 2] ^= 0x01
        data.write_bytes(bytes(content))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    else:
        (store_dir / (key + ".manifest.json")).unlink()
    code, report, _ = maint(
        "restore.verify", "-i", str(inventory), "--limit", "prod1", "--backup", key
    )
    assert code == 1
    error = report["results"][0]["error"]
    expected = {
        "flip": "sha256 does not match",
        "truncate": "does not match the manifest",
        "manifest": "manifest",
    }[damage]
    assert expected in error and key in error
    assert "pg_restore" not in error  # the mismatch, not what pg_restore made of the bytes
    assert scratch_databases(staging_cluster) == []


def test_altered_counts_fail_the_comparison_naming_the_table(
    prod_cluster, staging_cluster, shop, tmp_path
):
    store_dir = tmp_path / "store"
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(store_dir))
    key = backed_up(inventory)
    manifest_path = store_dir / (key + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["tables"]["public.customers"]["rows"] += 1
    manifest_path.write_text(json.dumps(manifest))
    code, report, _ = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 1
    assert (
        "table public.customers: 3000 rows restored, manifest says 3001"
        in report["results"][0]["error"]
    )
    assert scratch_databases(staging_cluster) == []


def test_failing_user_check_fails_the_drill(prod_cluster, staging_cluster, shop, tmp_path):
    inventory = drill_inventory(
        tmp_path,
        prod_cluster,
        staging_cluster,
        str(tmp_path / "store"),
    )
    text = inventory.read_text().replace("min: 1", "min: 999999")
    inventory.write_text(text)
    backed_up(inventory)
    code, report, _ = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 1
    assert "check 'customers exist' failed: returned 3000" in report["results"][0]["error"]


def test_target_down_is_unreachable(prod_cluster, staging_cluster, shop, ssh_fleet, tmp_path):
    inventory = drill_inventory(
        tmp_path,
        prod_cluster,
        staging_cluster,
        str(tmp_path / "store"),
        target_conn={**ssh_fleet.hosts[0].inventory_vars(), "ansible_host": "127.0.0.250"},
        all_vars=fleet_vars(ssh_fleet),
    )
    backed_up(inventory)
    code, report, _ = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 1
    assert report["results"][0]["status"] == "unreachable"


def test_drill_refuses_the_source_as_its_own_target_unless_named(
    prod_cluster, staging_cluster, tmp_path
):
    inventory = drill_inventory(
        tmp_path, prod_cluster, staging_cluster, str(tmp_path / "s"), restore_target="prod1"
    )
    code, _, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 2 and "restore_target is the host itself" in stderr


def test_restore_db_refuses_non_empty_target_without_force(
    prod_cluster, staging_cluster, shop, tmp_path
):
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(tmp_path / "store"))
    key = backed_up(inventory)
    staging_cluster.create_database("recovered")
    staging_cluster.execute("CREATE TABLE precious (x int)", dbname="recovered")
    base = [
        "restore.db",
        "-i",
        str(inventory),
        "--backup",
        key,
        "--target",
        "staging1",
        "--database",
        "recovered",
    ]
    try:
        code, report, _ = maint(*base, "--yes")
        assert code == 1 and "not empty" in report["results"][0]["error"]
        code, report, _ = maint(*base, "--force", "--dry-run")
        assert code == 0 and report["results"][0]["status"] == "skipped"
        code, _, stderr = maint(*base, "--force")
        assert code == 2 and "--yes" in stderr, "restored without confirmation off a terminal"
        code, report, stderr = maint(*base, "--force", "--yes", "--no-safety-backup")
        assert code == 0, stderr + json.dumps(report)
        assert report["results"][0]["status"] == "changed"
        digests = table_digests(staging_cluster, "recovered")
        assert digests.pop("public.precious") == (0, "")
        assert digests == table_digests(prod_cluster, DATABASE)
    finally:
        staging_cluster.drop_database("recovered")


def test_restore_db_into_absent_database(prod_cluster, staging_cluster, shop, tmp_path):
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(tmp_path / "store"))
    key = backed_up(inventory)
    try:
        code, _, stderr = maint(
            "restore.db",
            "-i",
            str(inventory),
            "--backup",
            key,
            "--target",
            "staging1",
            "--database",
            "fresh",
            "--yes",
        )
        assert code == 0, stderr
        assert table_digests(staging_cluster, "fresh") == table_digests(prod_cluster, DATABASE)
    finally:
        staging_cluster.drop_database("fresh")


def test_prune_keeps_newest_verified_backup_while_newer_unverified_exist(
    prod_cluster, staging_cluster, shop, tmp_path
):
    store_dir = tmp_path / "store"
    inventory = drill_inventory(
        tmp_path,
        prod_cluster,
        staging_cluster,
        str(store_dir),
        backup={"store": str(store_dir), "retention": {"keep_last": 1}},
    )
    verified = backed_up(inventory)
    assert maint("restore.verify", "-i", str(inventory), "--limit", "prod1")[0] == 0
    newer = [backed_up(inventory) for _ in range(2)]
    code, report, stderr = maint("backup.prune", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr
    store = open_store(str(store_dir))
    left = sorted(info.key for info in store.list("prod1/") if info.key.endswith(".manifest.json"))
    assert left == sorted([verified + ".manifest.json", newer[-1] + ".manifest.json"])
    [database] = report["results"][0]["details"]["databases"]
    reasons = {entry["key"]: entry["reasons"] for entry in database["kept"]}
    assert "newest passing drill" in reasons[verified]
    assert (
        Manifest.from_json(store.get_bytes(newer[-1] + ".manifest.json"), "m").database == DATABASE
    )


def test_health_reports_backup_and_drill_freshness(prod_cluster, staging_cluster, shop, tmp_path):
    """No backup is critical; a fresh backup without a drill is still critical until drilled."""
    store_dir = tmp_path / "store"
    inventory = drill_inventory(
        tmp_path,
        prod_cluster,
        staging_cluster,
        str(store_dir),
        health={"disk_warn_free_pct": 0, "disk_crit_free_pct": 0},
    )

    def freshness() -> tuple[int, dict]:
        code, report, _ = maint("health.check", "-i", str(inventory), "--limit", "prod1")
        checks = {c["name"]: c for c in report["results"][0]["details"]["checks"]}
        return code, checks

    code, checks = freshness()
    assert code == 2 and checks[f"backup {DATABASE}"]["message"] == "no complete backup found"
    backed_up(inventory)
    code, checks = freshness()
    assert checks[f"backup {DATABASE}"]["state"] == "OK"
    assert checks[f"drill {DATABASE}"]["state"] == "CRITICAL" and code == 2
    assert maint("restore.verify", "-i", str(inventory), "--limit", "prod1")[0] == 0
    code, checks = freshness()
    assert (code, checks[f"drill {DATABASE}"]["state"]) == (0, "OK")
    drill_inventory(
        tmp_path, prod_cluster, staging_cluster, str(store_dir),
        health={"disk_warn_free_pct": 0, "disk_crit_free_pct": 0, "backup_warn_age": "1s"},
    )  # fmt: skip
    time.sleep(1.1)  # the backup is more than 1s old however fast the runs above went
    code, checks = freshness()
    assert (code, checks[f"backup {DATABASE}"]["state"]) == (1, "WARNING")


def copied_into_the_future(store_dir: Path, key: str, year: int = 2099) -> str:
    """Copy a complete backup under a key dated YEAR, as a fast clock or a copy would leave it."""
    future = key.replace(key.split("/")[-1][:4], str(year), 1)
    for suffix in ("", ".manifest.json"):
        target = store_dir / (future + suffix)
        target.write_bytes((store_dir / (key + suffix)).read_bytes())
    return future


def test_future_dated_backup_is_never_the_newest(prod_cluster, staging_cluster, shop, tmp_path):
    """A 2099 backup is set aside: the drill takes the real newest, health names the 2099 one
    as a WARNING and grades the real one's age, backup.list shows no negative age."""
    store_dir = tmp_path / "store"
    inventory = drill_inventory(
        tmp_path, prod_cluster, staging_cluster, str(store_dir),
        health={"disk_warn_free_pct": 0, "disk_crit_free_pct": 0, "backup_warn_age": "1h"},
    )  # fmt: skip
    real = backed_up(inventory)
    future = copied_into_the_future(store_dir, real)

    code, report, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "prod1")
    assert code == 0, stderr + json.dumps(report)
    assert [d["key"] for d in report["results"][0]["details"]["drills"]] == [real]

    code, report, _ = maint("health.check", "-i", str(inventory), "--limit", "prod1")
    checks = {c["name"]: c for c in report["results"][0]["details"]["checks"]}
    assert checks[f"backup {DATABASE}"]["state"] == "OK"
    assert 0 <= checks[f"backup {DATABASE}"]["value"] < 600
    assert checks[f"future-dated {DATABASE}"]["state"] == "WARNING"
    assert future in checks[f"future-dated {DATABASE}"]["message"]
    assert code == 1

    code, listing, _ = maint("backup.list", "-i", str(inventory), "--limit", "prod1")
    assert code == 0
    result = listing["results"][0]
    ages = {row["key"]: (row["age"], row["future"]) for row in result["details"]["rows"]}
    assert ages[future] == ("in the future", True)
    assert not ages[real][1] and not ages[real][0].startswith("-")
    assert "-" not in result["summary"].split("newest ")[1].split(" ago")[0]
    assert "1 dated in the future" in result["summary"]


def test_drill_skips_hosts_without_a_target_and_drills_the_others(
    prod_cluster, staging_cluster, shop, tmp_path
):
    """Without --limit, staging1 (no restore_target) is skipped with its reason, prod1 drilled;
    limited to staging1 alone, the run is refused (exit 2)."""
    inventory = drill_inventory(tmp_path, prod_cluster, staging_cluster, str(tmp_path / "store"))
    backed_up(inventory)
    code, report, stderr = maint("restore.verify", "-i", str(inventory))
    assert code == 0, stderr + json.dumps(report)
    results = {result["host"]: result for result in report["results"]}
    assert results["prod1"]["status"] == "ok"
    assert results["staging1"]["status"] == "skipped"
    assert "no restore target" in results["staging1"]["details"]["reason"]
    assert report["summary"]["skipped"] == 1

    code, _, stderr = maint("restore.verify", "-i", str(inventory), "--limit", "staging1")
    assert code == 2 and "no restore target" in stderr and "Traceback" not in stderr
