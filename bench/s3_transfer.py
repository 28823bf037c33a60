"""Upload and download through `satchel web` with S3 storage, against boto3 doing the same on the same server.

Baseline in the same run: boto3 straight to the same local S3 server (moto's server mode), uploading the
same file (`upload_fileobj`) and reading it back in one streamed GET. Memory is the peak RSS of the web
worker while the bytes move.

The machine is shared and the S3 server is a Python test server on the same cores, so one pair of timings
says little. Each round times all four transfers, boto3 and Satchel back to back (which goes first alternates
from round to round), and the ratio of each round is taken from its own pair; the table shows the median
seconds, the median of the rounds' ratios, and the highest peak RSS of any round.

Both sides use the same client weight: Satchel is driven with urllib3, the HTTP library boto3 itself runs on,
reading in the same 1 MiB blocks and hashing nothing while timed (Satchel's download is checked against the
upload's SHA-256 once, untimed). A heavier client on one side only would measure the client, not Satchel.

    .venv/bin/python bench/s3_transfer.py [--size-mib 256] [--rounds 3]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from transfer import file_chunks  # noqa: E402

from satchel.runtime.embedded import free_port  # noqa: E402

from scratch import scratch_satchel, write_table  # noqa: E402
from support import moto as s3  # noqa: E402
from support.memory import PeakRss  # noqa: E402
from support.processes import create_account, running_web  # noqa: E402

MIB = 1024 * 1024


@dataclass
class Way:
    """One direction's timings over the rounds: boto3's, Satchel's, and the worker's peak RSS."""

    boto: list[float] = field(default_factory=list)
    satchel: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [b / s for b, s in zip(self.boto, self.satchel, strict=True)]


@dataclass
class Bench:
    client: Any
    bucket: str
    source: Path
    size: int
    url: str
    token: str
    web_pid: int
    up: Way = field(default_factory=Way)
    down: Way = field(default_factory=Way)
    http: urllib3.PoolManager = field(default_factory=lambda: urllib3.PoolManager(timeout=900, retries=False))

    def boto_upload(self) -> None:
        started = time.perf_counter()
        with self.source.open("rb") as f:
            self.client.upload_fileobj(f, self.bucket, "baseline.bin")
        self.up.boto.append(time.perf_counter() - started)

    def boto_download(self) -> None:
        started = time.perf_counter()
        body = self.client.get_object(Bucket=self.bucket, Key="baseline.bin")["Body"]
        for _ in iter(lambda: body.read(MIB), b""):
            pass
        self.down.boto.append(time.perf_counter() - started)

    def satchel_upload(self) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Length": str(self.size)}
        with PeakRss(self.web_pid) as rss:
            started = time.perf_counter()
            response = self.http.request(
                "PUT", f"{self.url}/api/files/big.bin", body=file_chunks(self.source), headers=headers
            )
            self.up.satchel.append(time.perf_counter() - started)
        if response.status != 201:
            raise RuntimeError(f"the upload answered {response.status}: {response.data[:500]!r}")
        self.up.rss.append(rss.peak)
        uploaded: dict[str, Any] = response.json()
        return uploaded

    def satchel_download(self, uploaded: dict[str, Any]) -> None:
        with PeakRss(self.web_pid) as rss:
            started = time.perf_counter()
            response = self.http.request("GET", self.link(uploaded), preload_content=False)
            for _ in iter(lambda: response.read(MIB), b""):
                pass
            self.down.satchel.append(time.perf_counter() - started)
        response.release_conn()
        self.down.rss.append(rss.peak)

    def link(self, uploaded: dict[str, Any]) -> str:
        return f"{uploaded['share']['url']}/download"

    def verify(self, uploaded: dict[str, Any]) -> None:
        """Once, untimed: the download sends the bytes that were uploaded."""
        digest = hashlib.sha256()
        response = self.http.request("GET", self.link(uploaded), preload_content=False)
        for block in iter(lambda: response.read(MIB), b""):
            digest.update(block)
        response.release_conn()
        if digest.hexdigest() != uploaded["file"]["sha256"]:
            raise RuntimeError("the download sent other bytes than were uploaded")

    def round(self, number: int) -> None:
        """All four transfers; boto3 first in odd rounds, Satchel first in even ones, so drift evens out."""
        uploaded: dict[str, Any] = {}

        def satchel_up() -> None:
            uploaded.update(self.satchel_upload())

        ups: list[Callable[[], None]] = [self.boto_upload, satchel_up]
        downs: list[Callable[[], None]] = [self.boto_download, lambda: self.satchel_download(uploaded)]
        if number % 2 == 0:
            ups.reverse()
            downs.reverse()
        for step in (*ups, *downs):
            step()
        if number == 1:
            self.verify(uploaded)
        self.empty_bucket()  # the test server keeps objects in memory: leave it nothing between rounds

    def empty_bucket(self) -> None:
        for item in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            self.client.delete_object(Bucket=self.bucket, Key=item["Key"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "s3_transfer.md")
    args = parser.parse_args()
    size = args.size_mib * MIB

    server = s3.MotoServer(port=free_port())
    server.start()
    try:
        bucket = server.create_bucket("bench")
        with scratch_satchel(WEB_CONCURRENCY="1", SATCHEL_MAX_UPLOAD_BYTES=str(size * 2), **server.env(bucket)) as (
            env,
            work,
        ):
            token = create_account(env, "bench@example.test")
            source = work / "source.bin"
            with source.open("wb") as f:
                block = os.urandom(MIB)
                for _ in range(args.size_mib):
                    f.write(block)
            with running_web(env) as (web, url):
                bench = Bench(server.client(), bucket, source, size, url, token, web.process.pid)
                for number in range(1, args.rounds + 1):
                    bench.round(number)
                    print(f"round {number}: {round_line(bench, number - 1)}", file=sys.stderr, flush=True)
    finally:
        server.stop()
    write_table(report(bench, args.size_mib, args.rounds), args.out)


def round_line(bench: Bench, index: int) -> str:
    up, down = bench.up, bench.down
    return (
        f"upload boto3 {up.boto[index]:.2f} s, Satchel {up.satchel[index]:.2f} s ({up.ratios()[index]:.2f}x, "
        f"{up.rss[index] / MIB:.0f} MiB); download boto3 {down.boto[index]:.2f} s, Satchel "
        f"{down.satchel[index]:.2f} s ({down.ratios()[index]:.2f}x, {down.rss[index] / MIB:.0f} MiB)"
    )


def report(bench: Bench, mib: int, rounds: int) -> list[str]:
    up, down = bench.up, bench.down

    def rate(seconds: list[float]) -> str:
        return f"{mib / statistics.median(seconds):.0f} MiB/s"

    def row(name: str, seconds: list[float], ratio: str, rss: str) -> str:
        return f"| {name} | {statistics.median(seconds):.2f} | {rate(seconds)} | {ratio} | {rss} |"

    def ratio(way: Way) -> str:
        return f"{statistics.median(way.ratios()):.2f}x"

    def peak(way: Way) -> str:
        return f"{max(way.rss) / MIB:.0f} MiB"

    return [
        f"# S3 transfer: {mib} MiB through `satchel web` to a local S3 server ({os.cpu_count()} cores)",
        "",
        f"Medians of {rounds} interleaved rounds; the ratio is the median of each round's own ratio.",
        "",
        "| operation | seconds | rate | vs boto3 | worker peak RSS |",
        "|---|---|---|---|---|",
        row("boto3 `upload_fileobj` (baseline)", up.boto, "1.00x", "—"),
        row("upload through Satchel (PUT, sha256 on the way)", up.satchel, ratio(up), peak(up)),
        row("boto3 one streamed GET (baseline)", down.boto, "1.00x", "—"),
        row("download through Satchel (GET share link)", down.satchel, ratio(down), peak(down)),
        "",
        *(f"- round {n + 1}: {round_line(bench, n)}" for n in range(rounds)),
        "",
        "The S3 server, the web process and this client share the same cores; the S3 server is a test server,",
        "so the baseline, not the absolute rate, is what the ratios compare against.",
    ]


if __name__ == "__main__":
    main()
