"""Store upload benchmark: streaming a dump-sized pipe into S3 (moto) and GCS (the emulator).

Each run is a fresh process that reads SIZE bytes from a pipe (as backup.db reads pg_dump's
output) and uploads them; its peak RSS comes from wait4. Alternating over several rounds
(medians), in the same run:

  s3 product    backups.stores S3Store (explicit multipart, 16 MiB parts, two in memory)
  s3 baseline   boto3's upload_fileobj on the same pipe (the transfer manager's defaults)
  gcs product   backups.stores GcsStore (resumable upload, 16 MiB chunks)

    python bench/store_upload.py [--size 256MiB] [--rounds 3]

Both servers keep every object in memory: the default size keeps them well under 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from maintenance.units import parse_size  # noqa: E402
from tests.harness import start_gcs_emulator, start_moto  # noqa: E402

BLOCK = 1024 * 1024
ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def child(kind: str, url: str, size: int) -> None:
    """Upload SIZE bytes of stdin (a pipe) to URL as KIND; print seconds taken."""
    started = time.monotonic()
    source = sys.stdin.buffer.raw  # unbuffered, like a pipe from pg_dump
    if kind == "s3 baseline":
        import boto3

        bucket, key = url.removeprefix("s3://").split("/", 1)
        client = boto3.client("s3", endpoint_url=os.environ["BENCH_ENDPOINT"])
        client.upload_fileobj(source, bucket, key)
    else:
        from backups.stores import open_store

        location, key = url.rsplit("/", 1)
        options = {"endpoint_url": os.environ["BENCH_ENDPOINT"]} if kind.startswith("s3") else {}
        with open_store(location, options).open_write(key) as upload:
            while chunk := source.read(BLOCK):
                upload.write(chunk)
        assert upload.bytes_written == size
    print(json.dumps({"seconds": time.monotonic() - started}))


def run_once(kind: str, url: str, size: int, env: dict[str, str]) -> tuple[float, float]:
    """One child process fed by a producer of SIZE pseudo-random bytes: (seconds, RSS MiB)."""
    producer = subprocess.Popen(["head", "-c", str(size), "/dev/urandom"], stdout=subprocess.PIPE)
    consumer = subprocess.Popen(
        [sys.executable, __file__, "--child", kind, url, str(size)],
        stdin=producer.stdout,
        stdout=subprocess.PIPE,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
    )
    assert producer.stdout is not None
    producer.stdout.close()
    output = consumer.stdout.read() if consumer.stdout else b""
    _, status, usage = os.wait4(consumer.pid, 0)
    consumer.returncode = os.waitstatus_to_exitcode(status)
    producer.wait()
    if consumer.returncode != 0:
        raise SystemExit(f"{kind} run failed with status {consumer.returncode}")
    return json.loads(output)["seconds"], usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256MiB", help="bytes per upload (default 256MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating (default 3)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    size = parse_size(args.size, "--size")

    import boto3
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    moto, gcs = start_moto(), start_gcs_emulator()
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client("s3", endpoint_url=moto.url, **_boto_credentials())
        s3.create_bucket(Bucket=bucket)
        os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
        storage.Client(project="bench", credentials=AnonymousCredentials()).create_bucket(bucket)
        env = {**ENV, "BENCH_ENDPOINT": moto.url, "STORAGE_EMULATOR_HOST": gcs.url}
        kinds = {
            "s3 product": f"s3://{bucket}/product",
            "s3 baseline": f"s3://{bucket}/baseline",
            "gcs product": f"gs://{bucket}/product",
        }
        figures: dict[str, list[tuple[float, float]]] = {kind: [] for kind in kinds}
        for round_number in range(args.rounds):
            for kind, url in kinds.items():
                figures[kind].append(run_once(kind, f"{url}/r{round_number}", size, env))
                if kind.startswith("s3"):
                    s3.delete_object(Bucket=bucket, Key=f"{url.split('/', 3)[3]}/r{round_number}")
    finally:
        moto.stop()
        gcs.stop()

    medians = {
        kind: (
            statistics.median(s for s, _ in runs),
            statistics.median(m for _, m in runs),
        )
        for kind, runs in figures.items()
    }
    mib = size / BLOCK
    title = f"upload of {args.size} from a pipe"
    print(f"{title:<28}{'seconds':>10}{'MiB/s':>10}{'peak RSS MiB':>15}")
    for kind, (seconds, rss) in medians.items():
        print(f"{kind:<28}{seconds:>10.2f}{mib / seconds:>10.1f}{rss:>15.0f}")
    print("(medians of", args.rounds, "rounds on a shared 2-core machine: timings are noisy)")
    product_s, product_rss = medians["s3 product"]
    baseline_s, baseline_rss = medians["s3 baseline"]
    print(
        json.dumps(
            {
                "bench": "store_upload",
                "rounds": args.rounds,
                "size_mib": round(mib),
                "product_s": round(product_s, 2),
                "baseline": "boto3 upload_fileobj from a pipe",
                "baseline_s": round(baseline_s, 2),
                "ratio": round(product_s / baseline_s, 2),
                "product_peak_rss_mb": round(product_rss),
                "baseline_peak_rss_mb": round(baseline_rss),
                "gcs_product_s": round(medians["gcs product"][0], 2),
                "gcs_product_peak_rss_mb": round(medians["gcs product"][1]),
            }
        )
    )


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": ENV["AWS_DEFAULT_REGION"],
    }


if __name__ == "__main__":
    main()
