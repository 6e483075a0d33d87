"""Data offsets for piped custom-format dumps: the real pg_dump writes, the real pg_restore reads.

A backup's dump goes through a pipe, so pg_dump leaves its TOC's data offsets unset; the
fetch fills them in on the way to the host. These tests check the patched file with pg_dump's
own seekable output and with pg_restore --jobs 2, and that anything else is left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import zstandard

from backups.archive.layout import parse_key
from backups.archive.manifest import Manifest
from backups.archive.toc import (
    BLK_BLOBS,
    BLK_DATA,
    K_OFFSET_NO_DATA,
    K_OFFSET_POS_NOT_SET,
    K_OFFSET_POS_SET,
    OffsetObserver,
    Toc,
    parse_toc,
)
from backups.postgres.fetch import fetch_to_host
from backups.stores import open_store
from maintenance.inventory import Host
from maintenance.runners import LocalRunner
from tests.backup_helpers import make_sample_database, table_digests
from tests.inventories import write_inventory
from tests.maint_cli import run_maint_cli

DATABASE = "tocshop"
# Odd read sizes, so headers and lengths are split across reads at every possible byte.
READ_SIZES = (1, 2, 3, 5, 7, 11, 4096, 65_537, 1 << 20)


@pytest.fixture(scope="module")
def shop(prod_cluster):
    """Several tables with rows, an empty table, and large objects (a BLOBS data block)."""
    make_sample_database(prod_cluster, DATABASE, rows=4000)
    with prod_cluster.connect(DATABASE) as connection:
        connection.execute("CREATE TABLE empty_audit (id int, note text)")
        connection.execute("CREATE TABLE wide AS SELECT i, repeat(md5(i::text), 40) AS blob"
                           " FROM generate_series(1, 2000) i")  # fmt: skip
        for size in (10, 70_000, 300_000):
            connection.execute("SELECT lo_from_bytea(0, decode(repeat('ab', %s), 'hex'))", (size,))
    yield DATABASE
    prod_cluster.drop_database(DATABASE)


def pg_env(cluster) -> dict[str, str]:
    return {**os.environ, "PGPASSWORD": cluster.password}


def piped_dump(cluster, path: Path, *options: str) -> Path:
    """pg_dump writing to a pipe, as a backup does: `pg_dump ... | cat > PATH`."""
    dsn = cluster.dsn(DATABASE, with_password=False)
    argv = ["pg_dump", "--no-password", *options, f"--dbname={dsn}"]
    with path.open("wb") as sink:
        dump = subprocess.Popen(argv, stdout=subprocess.PIPE, env=pg_env(cluster))
        subprocess.run(["cat"], stdin=dump.stdout, stdout=sink, check=True)
        dump.stdout.close()
    assert dump.wait() == 0
    return path


def seekable_dump(cluster, path: Path) -> Path:
    """pg_dump writing the file itself: it seeks back and records the data offsets."""
    dsn = cluster.dsn(DATABASE, with_password=False)
    argv = ["pg_dump", "--no-password", "-Fc", "-Z0", f"--file={path}", f"--dbname={dsn}"]
    subprocess.run(argv, env=pg_env(cluster), check=True)
    return path


def observe(data: bytes) -> OffsetObserver:
    observer = OffsetObserver()
    pos, turn = 0, 0
    while pos < len(data):
        size = READ_SIZES[turn % len(READ_SIZES)]
        observer.feed(data[pos : pos + size])
        pos, turn = pos + size, turn + 1
    return observer


def data_entries(toc: Toc) -> dict[str, tuple[int, int]]:
    """'desc tag' -> (flag, offset) of every entry that has a data block."""
    return {
        f"{e.desc} {e.tag}": (e.flag, e.offset) for e in toc.entries if e.flag != K_OFFSET_NO_DATA
    }


def block_header(data: bytes, offset: int, toc: Toc) -> tuple[int, int]:
    """The (block type, dumpId) at OFFSET: what pg_restore reads after seeking there."""
    sign = data[offset + 1]
    dump_id = int.from_bytes(data[offset + 2 : offset + 2 + toc.int_size], "little")
    return data[offset], -dump_id if sign else dump_id


def pg_restore_list(path: Path) -> str:
    return subprocess.run(
        ["pg_restore", "-l", str(path)], capture_output=True, text=True, check=True
    ).stdout


def test_patched_piped_dump_has_pg_dumps_own_offsets_and_restores_in_parallel(
    prod_cluster, staging_cluster, shop, tmp_path
):
    piped = piped_dump(prod_cluster, tmp_path / "piped.dump", "-Fc", "-Z0")
    seekable = seekable_dump(prod_cluster, tmp_path / "seekable.dump")
    original = piped.read_bytes()
    before = parse_toc(original)
    assert {flag for flag, _ in data_entries(before).values()} == {K_OFFSET_POS_NOT_SET}

    patch = observe(original).patched_toc()
    assert patch is not None and len(patch) == before.end
    patched = tmp_path / "patched.dump"
    patched.write_bytes(patch + original[len(patch) :])

    content = patched.read_bytes()
    after = parse_toc(content)
    entries = data_entries(after)
    assert {"TABLE DATA customers", "TABLE DATA empty_audit", "BLOBS BLOBS"} <= set(entries)
    assert entries == data_entries(parse_toc(seekable.read_bytes()))
    for entry in after.entries:
        if entry.flag != K_OFFSET_NO_DATA:
            assert entry.flag == K_OFFSET_POS_SET
            kind = BLK_BLOBS if entry.desc == "BLOBS" else BLK_DATA
            assert block_header(content, entry.offset, after) == (kind, entry.dump_id)
    assert pg_restore_list(patched) == pg_restore_list(piped)

    staging_cluster.create_database("tocshop_restored")
    try:
        subprocess.run(
            ["pg_restore", "--jobs", "2", "--exit-on-error", "--no-owner", "--no-password",
             "-d", staging_cluster.dsn("tocshop_restored", with_password=False), str(patched)],
            env=pg_env(staging_cluster), check=True, capture_output=True,
        )  # fmt: skip
        assert table_digests(staging_cluster, "tocshop_restored") == table_digests(
            prod_cluster, DATABASE
        )
        objects = "SELECT count(*), sum(length(lo_get(oid))) FROM pg_largeobject_metadata"
        assert staging_cluster.execute(objects, dbname="tocshop_restored") == (
            prod_cluster.execute(objects, dbname=DATABASE)
        )
    finally:
        staging_cluster.drop_database("tocshop_restored")


def test_compressed_dump_is_followed_too(prod_cluster, shop, tmp_path):
    """pg_dump's own zlib chunks have the same framing: offsets are found as well."""
    original = piped_dump(prod_cluster, tmp_path / "zlib.dump", "-Fc", "-Z1").read_bytes()
    patch = observe(original).patched_toc()
    assert patch is not None
    toc = parse_toc(patch + original[len(patch) :])
    data = [e for e in toc.entries if e.flag != K_OFFSET_NO_DATA]
    assert data and all(e.flag == K_OFFSET_POS_SET for e in data)
    for entry in data:
        assert block_header(original, entry.offset, toc)[1] == entry.dump_id


def test_seekable_dump_needs_no_patch(prod_cluster, shop, tmp_path):
    seekable = seekable_dump(prod_cluster, tmp_path / "seekable.dump")
    observer = observe(seekable.read_bytes())
    assert observer.patched_toc() is None
    assert "already set" in observer.reason  # no round trip to write the same bytes


def test_not_an_archive_or_cut_short_turns_the_observer_off(prod_cluster, shop, tmp_path):
    archive = piped_dump(prod_cluster, tmp_path / "piped.dump", "-Fc", "-Z0").read_bytes()
    plain = piped_dump(prod_cluster, tmp_path / "plain.sql", "-Fp").read_bytes()
    toc_end = parse_toc(archive).end
    newer, directory = bytearray(archive), bytearray(archive)
    newer[6] = 99  # archive version 1.99
    directory[10] = 5  # the format byte of a directory archive's toc.dat
    streams = {
        "garbage": os.urandom(300_000),
        "plain SQL": plain,
        "unknown version": bytes(newer),
        "directory format": bytes(directory),
        "cut in the TOC": archive[: toc_end // 2],
        "cut in the data": archive[: (toc_end + len(archive)) // 2],
        "empty": b"",
    }
    for name, stream in streams.items():
        observer = observe(stream)
        assert observer.patched_toc() is None, name
        assert observer.reason, name


def host_without_zstd(monkeypatch, bin_dir: Path) -> None:
    """A PATH with the tools every host has, but no zstd: the fetch decompresses itself."""
    bin_dir.mkdir()
    for tool in ("cat", "dd", "rm"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("recorded", [True, False], ids=["offsets in manifest", "older backup"])
@pytest.mark.parametrize("host", ["with zstd", "without zstd"])
def test_fetch_writes_the_offsets_into_the_file_on_the_host(
    prod_cluster, shop, tmp_path, monkeypatch, host, recorded
):
    """A real backup (zstd over pg_dump -Fc -Z0 through a pipe) fetched as the drill does.

    The backup records its data offsets in the manifest; a manifest without them (an older
    backup) makes the fetch work them out from the bytes instead. Same file either way.
    """
    store_dir = tmp_path / "store"
    source = {"postgres": {"dsn": prod_cluster.dsn(), "databases": [DATABASE]}}
    hosts = {
        "prod1": {"ansible_connection": "local", **source, "backup": {"store": str(store_dir)}}
    }
    inventory = write_inventory(tmp_path / "inv.yaml", hosts)
    done = run_maint_cli(["backup.db", "-i", str(inventory), "--json"])
    assert done.returncode == 0, done.stderr
    key = parse_key(json.loads(done.stdout)["results"][0]["details"]["databases"][0]["key"])
    store = open_store(str(store_dir))
    manifest = Manifest.from_json(store.get_bytes(key.manifest_key), key.manifest_key)
    plain = zstandard.ZstdDecompressor().decompressobj().decompress(store.get_bytes(key.key))
    recorded_offsets = manifest.offsets()
    assert recorded_offsets, "backup.db records where each table's data starts"
    for dump_id, offset in recorded_offsets.items():
        assert block_header(plain, offset, parse_toc(plain))[1] == dump_id
    if not recorded:
        manifest = dataclasses.replace(manifest, data_offsets=None)
    path = tmp_path / "fetched.dump"
    runner = LocalRunner(Host("target", (), {"ansible_connection": "local"}))
    if host == "without zstd":
        host_without_zstd(monkeypatch, tmp_path / "bin")
    else:
        assert shutil.which("zstd"), "scripts/install-deps installs zstd for this case"
    commands: list[str] = []
    stream = runner.stream

    def recording_stream(command, **kwargs):
        commands.append(str(command))
        return stream(command, **kwargs)

    monkeypatch.setattr(runner, "stream", recording_stream)

    fetch_to_host(store, key, manifest, runner, str(path))

    decompressed_on_host = any("zstd -d" in command for command in commands)
    assert decompressed_on_host == (host == "with zstd"), commands

    content = path.read_bytes()
    toc = parse_toc(content)
    data = [e for e in toc.entries if e.flag != K_OFFSET_NO_DATA]
    assert {e.desc for e in data} >= {"TABLE DATA", "BLOBS"}
    assert all(e.flag == K_OFFSET_POS_SET for e in data)
    for entry in data:
        assert block_header(content, entry.offset, toc)[1] == entry.dump_id
    assert path.stat().st_mode & 0o077 == 0
    assert len(content) == len(plain) and content[toc.end :] == plain[toc.end :]


def test_small_archive_whose_toc_ends_in_the_last_read_is_patched(prod_cluster, shop, tmp_path):
    """The TOC completes in the final read, before the observer's next parse attempt."""
    content = piped_dump(
        prod_cluster, tmp_path / "small.dump", "-Fc", "-Z0", "-t", "empty_audit"
    ).read_bytes()
    end = parse_toc(content).end
    assert len(content) - end < end  # the rest is smaller than the first read below
    observer = OffsetObserver()
    observer.feed(content[: end - 1])
    observer.feed(content[end - 1 :])
    patched = observer.patched_toc()
    assert patched is not None, observer.reason
    [data] = [e for e in parse_toc(patched + content[end:]).entries if e.desc == "TABLE DATA"]
    assert data.flag == K_OFFSET_POS_SET
