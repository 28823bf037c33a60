"""Resumable (tus) upload throughput against one plain PUT of the same file, and the web worker's memory.

Baseline in the same run: `curl -T` of the same file to `PUT /api/files/…` (one request, streamed).
The resumable upload goes through a third-party tus client (tuspy) in requests of
SATCHEL_UPLOAD_CHUNK_BYTES (50 MiB by default: what passes proxies that cap one request's body),
each a new connection, as such clients do. Memory is the web worker's peak RSS while the bytes move.

    .venv/bin/python bench/resumable.py [--size-mib 1024] [--chunk-mib 50]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tusclient.client import TusClient

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from scratch import scratch_satchel, write_table  # noqa: E402
from support.memory import PeakRss  # noqa: E402
from support.processes import create_account, running_web  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6, help="each upload this many times; the median counts")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "resumable.md")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024

    with scratch_satchel(WEB_CONCURRENCY="1", SATCHEL_MAX_UPLOAD_BYTES=str(size * 2)) as (env, work):
        token = create_account(env, "bench@example.test")
        source = work / "source.bin"
        with source.open("wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1024 * 1024))
        with running_web(env) as (web, url):
            bearer = {"Authorization": f"Bearer {token}"}
            expected = hashlib.sha256(source.read_bytes()).hexdigest()
            times: dict[str, list[float]] = {"put": [], "tus": []}
            peaks = {"put": 0, "tus": 0}

            def put(round_: int) -> str:
                target = f"{url}/api/files/put-{round_}.bin?share=false"
                answer = subprocess.run(
                    ["curl", "-sS", "-f", "-T", str(source), "-H", f"Authorization: Bearer {token}", target],
                    check=True, capture_output=True,
                )  # fmt: skip
                return str(httpx.Response(200, content=answer.stdout).json()["file"]["id"])

            def tus(round_: int) -> str:
                client = TusClient(f"{url}/api/uploads/", headers=bearer)
                uploader = client.uploader(
                    str(source), chunk_size=args.chunk_mib * 1024 * 1024, metadata={"filename": f"tus-{round_}.bin"}
                )
                uploader.upload()
                return str(uploader.request.response_headers["satchel-file-id"])

            for round_ in range(args.rounds):
                # Alternate which goes first, and start each after `sync`: this disk's write speed swings widely.
                for kind in ("put", "tus") if round_ % 2 == 0 else ("tus", "put"):
                    os.sync()
                    with PeakRss(web.process.pid) as rss:
                        started = time.perf_counter()
                        file_id = (put if kind == "put" else tus)(round_)
                        times[kind].append(time.perf_counter() - started)
                    peaks[kind] = max(peaks[kind], rss.peak)
                    assert httpx.get(f"{url}/api/files/{file_id}", headers=bearer).json()["sha256"] == expected
                    httpx.delete(f"{url}/api/files/{file_id}", headers=bearer).raise_for_status()
            put_times, tus_times, put_peak, tus_peak = times["put"], times["tus"], peaks["put"], peaks["tus"]

    mib = args.size_mib
    requests = -(-args.size_mib // args.chunk_mib) + 1
    put_seconds, tus_seconds = statistics.median(put_times), statistics.median(tus_times)
    lines = [
        f"# Resumable upload: {mib} MiB through `satchel web` (file storage, loopback, {os.cpu_count()} cores)",
        "",
        "| upload | requests | seconds | rate | vs one PUT | worker peak RSS |",
        "|---|---|---|---|---|---|",
        f"| `curl -T` (one PUT, baseline) | 1 | {put_seconds:.2f} | {mib / put_seconds:.0f} MiB/s | 1.00x | "
        f"{put_peak / 2**20:.0f} MiB |",
        f"| tus client, {args.chunk_mib} MiB requests | {requests} | {tus_seconds:.2f} | {mib / tus_seconds:.0f} MiB/s "
        f"| {put_seconds / tus_seconds:.2f}x | {tus_peak / 2**20:.0f} MiB |",
        "",
        f"Median of {args.rounds} rounds, alternating which goes first, each after `sync`: "
        f"PUT {', '.join(f'{t:.2f}' for t in put_times)} s; tus {', '.join(f'{t:.2f}' for t in tus_times)} s.",
        "Both compute the file's SHA-256 on the way in (the resumable one reads the finished file back instead when",
        "its requests reached different processes). The clients run on the same cores as the server; on its own,",
        "against a server that discards the bytes, the tus client needs about 1.5x the time `curl -T` does.",
    ]
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
