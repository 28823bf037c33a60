"""Upload and download through `satchel web` with S3 storage, against boto3 doing the same on the same server.

Baseline in the same run: boto3 straight to the same local S3 server (moto's server mode), uploading the
same file (`upload_fileobj`) and reading it back in one streamed GET. Memory is the peak RSS of the web
worker while the bytes move.

    .venv/bin/python bench/s3_transfer.py [--size-mib 256]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from transfer import file_chunks  # noqa: E402

from satchel.runtime.embedded import free_port  # noqa: E402

from scratch import scratch_satchel, write_table  # noqa: E402
from support import moto as s3  # noqa: E402
from support.memory import PeakRss  # noqa: E402
from support.processes import create_account, running_web  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "s3_transfer.md")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024

    server = s3.MotoServer(port=free_port())
    server.start()
    try:
        bucket = server.create_bucket("bench")
        storage = {
            "STORAGE_URL": f"s3://{bucket}",
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": s3.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": s3.SECRET_KEY,
            "AWS_DEFAULT_REGION": s3.REGION,
        }
        with scratch_satchel(WEB_CONCURRENCY="1", SATCHEL_MAX_UPLOAD_BYTES=str(size * 2), **storage) as (env, work):
            token = create_account(env, "bench@example.test")
            source = work / "source.bin"
            with source.open("wb") as f:
                block = os.urandom(1024 * 1024)
                for _ in range(args.size_mib):
                    f.write(block)

            client = server.client()
            started = time.perf_counter()
            with source.open("rb") as f:
                client.upload_fileobj(f, bucket, "baseline.bin")
            boto_up = time.perf_counter() - started
            started = time.perf_counter()
            body = client.get_object(Bucket=bucket, Key="baseline.bin")["Body"]
            for _ in iter(lambda: body.read(1024 * 1024), b""):
                pass
            boto_down = time.perf_counter() - started
            client.delete_object(Bucket=bucket, Key="baseline.bin")

            with running_web(env) as (web, url):
                headers = {"Authorization": f"Bearer {token}", "Content-Length": str(size)}
                with PeakRss(web.process.pid) as up_rss:
                    started = time.perf_counter()
                    response = httpx.put(
                        f"{url}/api/files/big.bin", content=file_chunks(source), headers=headers, timeout=900
                    )
                    up_seconds = time.perf_counter() - started
                response.raise_for_status()
                link = response.json()["share"]["url"] + "/download"
                digest = hashlib.sha256()
                with PeakRss(web.process.pid) as down_rss:
                    started = time.perf_counter()
                    with httpx.stream("GET", link, timeout=900) as stream:
                        for chunk in stream.iter_raw(1024 * 1024):
                            digest.update(chunk)
                    down_seconds = time.perf_counter() - started
                assert digest.hexdigest() == response.json()["file"]["sha256"]
    finally:
        server.stop()

    mib = args.size_mib

    def rate(seconds: float) -> str:
        return f"{mib / seconds:.0f} MiB/s"

    lines = [
        f"# S3 transfer: {mib} MiB through `satchel web` to a local S3 server ({os.cpu_count()} cores)",
        "",
        "| operation | seconds | rate | vs boto3 | worker peak RSS |",
        "|---|---|---|---|---|",
        f"| boto3 `upload_fileobj` (baseline) | {boto_up:.2f} | {rate(boto_up)} | 1.00x | — |",
        f"| upload through Satchel (PUT, sha256 on the way) | {up_seconds:.2f} | {rate(up_seconds)} | "
        f"{boto_up / up_seconds:.2f}x | {up_rss.peak / 2**20:.0f} MiB |",
        f"| boto3 one streamed GET (baseline) | {boto_down:.2f} | {rate(boto_down)} | 1.00x | — |",
        f"| download through Satchel (GET share link) | {down_seconds:.2f} | {rate(down_seconds)} | "
        f"{boto_down / down_seconds:.2f}x | {down_rss.peak / 2**20:.0f} MiB |",
        "",
        "The S3 server, the web process and this client share the same cores; the S3 server is a test server,",
        "so the baseline, not the absolute rate, is what the ratios compare against.",
    ]
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
