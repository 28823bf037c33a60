"""`satchel files import` of a big file already on the server's disk, next to `cp` of it, and the command's peak memory.

Baseline in the same run: `cp` of the same file on the same disk, then `sync`; the import is timed the same way
(the whole command, then `sync`), and so is the same command importing one byte (its start-up, checks and
transaction), in rounds that take turns going first, the medians shown. Memory is the peak RSS of the
`satchel files import` process itself, from the kernel's accounting of the finished child.

    .venv/bin/python bench/import_files.py [--size-mib 1024] [--rounds 3]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from machine import load_average  # noqa: E402

from scratch import scratch_satchel, write_table  # noqa: E402
from support.processes import create_account  # noqa: E402

OWNER = "bench@example.test"


@dataclass
class Run:
    seconds: float
    peak_rss_mib: float


def write_random(path: Path, mib: int) -> None:
    with path.open("wb") as out:
        block = os.urandom(1024 * 1024)
        for _ in range(mib):
            out.write(block)


def copy(source: Path, work: Path) -> float:
    target = work / "copy.bin"
    started = time.perf_counter()
    shutil.copyfile(source, target)
    os.sync()
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


def import_file(env: dict[str, str], source: Path) -> Run:
    """The whole command, then ``sync``, timed; its peak RSS as the kernel counted it when it ended."""
    command = [sys.executable, "-m", "satchel", "files", "import", str(source), "--owner", OWNER]
    log = source.with_suffix(".log")
    with log.open("wb") as output:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        os.sync()
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if child.returncode != 0:
        raise RuntimeError(f"satchel files import failed ({child.returncode}): {log.read_text()[-2000:]}")
    return Run(seconds, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "import.md")
    args = parser.parse_args()
    size = args.size_mib * 1024 * 1024
    room = size * (args.rounds + 2)

    load_before = load_average()
    settings = {"SATCHEL_MAX_UPLOAD_BYTES": str(size * 2), "SATCHEL_DEFAULT_QUOTA_BYTES": str(room)}
    with scratch_satchel(**settings) as (env, work):
        create_account(env, OWNER)
        source, tiny = work / "source.bin", work / "tiny.bin"
        write_random(source, args.size_mib)
        tiny.write_bytes(b"x")

        cps: list[float] = []
        imports: list[Run] = []
        starts: list[Run] = []  # the same command with one byte to move: its start-up, checks and transaction
        for round_ in range(args.rounds):
            turns = [
                lambda: cps.append(copy(source, work)),
                lambda: imports.append(import_file(env, source)),
                lambda: starts.append(import_file(env, tiny)),
            ]
            for turn in turns[round_ % 3 :] + turns[: round_ % 3]:  # each goes first in turn
                turn()

    cp_s = statistics.median(cps)
    import_s = statistics.median(r.seconds for r in imports)
    start_s = statistics.median(r.seconds for r in starts)
    moving_s = max(import_s - start_s, 1e-3)
    peak = max(r.peak_rss_mib for r in imports)
    mib = args.size_mib

    def rate(seconds: float) -> str:
        return f"{mib / seconds:.0f} MiB/s"

    def runs(samples: list[float]) -> str:
        return ", ".join(f"{s:.2f}" for s in samples)

    lines = [
        f"# Import: {mib} MiB already on the server's disk, with `satchel files import` (file storage, "
        f"{os.cpu_count()} cores)",
        "",
        "| operation | seconds | rate | vs `cp` | process peak RSS |",
        "|---|---|---|---|---|",
        f"| `cp` + `sync` (baseline) | {cp_s:.2f} | {rate(cp_s)} | 1.00x | — |",
        f"| `satchel files import` + `sync`, the whole command | {import_s:.2f} | {rate(import_s)} | "
        f"{cp_s / import_s:.2f}x | {peak:.0f} MiB |",
        f"| the same command importing 1 byte | {start_s:.2f} | — | — | "
        f"{max(r.peak_rss_mib for r in starts):.0f} MiB |",
        f"| the file's bytes: the first row less the second | {moving_s:.2f} | {rate(moving_s)} | "
        f"{cp_s / moving_s:.2f}x | — |",
        "",
        f"Median of {args.rounds} rounds, each of the three going first in turn: `cp` {runs(cps)} s; import "
        f"{runs([r.seconds for r in imports])} s; 1 byte {runs([r.seconds for r in starts])} s.",
        "The command's time includes its start-up (Python, the settings, the connections), the checks and the",
        "transaction that records the file: the 1-byte row. The rest is the bytes, read in 1 MiB blocks and",
        "hashed (SHA-256) on their way into the store. Peak RSS is the import process's own, as the kernel",
        "counted it: compare the file's with the 1-byte import's to see what the size adds.",
        f"Load average (1/5/15 min) at the start {load_before}, at the end {load_average()}: the machine is shared.",
    ]
    write_table(lines, args.out)


if __name__ == "__main__":
    main()
