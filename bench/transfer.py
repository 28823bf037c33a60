"""Upload and download throughput of a real `satchel web`, and its worker's peak memory.

Baseline in the same run: `cp` of the same file on the same disk. Memory is the
peak RSS of the web worker process while the bytes move, next to its RSS at rest.

    .venv/bin/python bench/transfer.py [--size-mib 1024]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from scratch import scratch_satchel, write_table  # noqa: E402
from support.memory import PeakRss  # noqa: E402
from support.processes import create_account, running_web  # noqa: E402


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            yield block


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "transfer.md")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024

    with scratch_satchel(WEB_CONCURRENCY="1", SATCHEL_MAX_UPLOAD_BYTES=str(size * 2)) as (env, work):
        token = create_account(env, "bench@example.test")
        source = work / "source.bin"
        with source.open("wb") as f:
            block = os.urandom(1024 * 1024)
            for _ in range(args.size_mib):
                f.write(block)

        started = time.perf_counter()
        shutil.copyfile(source, work / "copy.bin")
        os.sync()
        cp_seconds = time.perf_counter() - started
        (work / "copy.bin").unlink()

        with running_web(env) as (web, url):
            time.sleep(0.5)
            at_rest = max(c.memory_info().rss for c in psutil.Process(web.process.pid).children(recursive=True))

            headers = {"Authorization": f"Bearer {token}", "Content-Length": str(size)}
            with PeakRss(web.process.pid) as up_rss:
                started = time.perf_counter()
                response = httpx.put(
                    f"{url}/api/files/big.bin", content=file_chunks(source), headers=headers, timeout=600
                )
                up_seconds = time.perf_counter() - started
            response.raise_for_status()
            link = response.json()["share"]["url"] + "/download"

            digest = hashlib.sha256()
            with PeakRss(web.process.pid) as down_rss:
                started = time.perf_counter()
                with httpx.stream("GET", link, timeout=600) as stream:
                    for chunk in stream.iter_raw(1024 * 1024):
                        digest.update(chunk)
                down_seconds = time.perf_counter() - started
            assert digest.hexdigest() == response.json()["file"]["sha256"]

    mib = args.size_mib

    def rate(seconds: float) -> str:
        return f"{mib / seconds:.0f} MiB/s"

    lines = [
        f"# Transfer: {mib} MiB through `satchel web` (file storage, loopback, {os.cpu_count()} cores)",
        "",
        "| operation | seconds | rate | vs `cp` | worker peak RSS |",
        "|---|---|---|---|---|",
        f"| `cp` (baseline) | {cp_seconds:.2f} | {rate(cp_seconds)} | 1.00x | — |",
        f"| upload (PUT, sha256 on the way) | {up_seconds:.2f} | {rate(up_seconds)} | "
        f"{cp_seconds / up_seconds:.2f}x | {up_rss.peak / 2**20:.0f} MiB |",
        f"| download (GET share link) | {down_seconds:.2f} | {rate(down_seconds)} | "
        f"{cp_seconds / down_seconds:.2f}x | {down_rss.peak / 2**20:.0f} MiB |",
        "",
        f"Worker RSS at rest: {at_rest / 2**20:.0f} MiB. The client (this script, hashing what it receives) runs on",
        "the same cores. Rates are the throughput relative to `cp` of the same file in the same run.",
    ]
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
