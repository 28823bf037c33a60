"""Web start-up: seconds from exec to the first 200 on /healthz (factor IX).

Compared, in the same run, with a bare ASGI hello-world started by the same
Gunicorn + Uvicorn stack, so the ratio says what Satchel itself adds.

    .venv/bin/python bench/startup.py [--runs 7]

Needs DATABASE_URL and REDIS_URL (any reachable servers; nothing is written).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from satchel.runtime.embedded import free_port

HERE = Path(__file__).parent


def time_to_first_200(command: list[str], env: dict[str, str], url: str) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited with {process.returncode}") from None
                time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.md")
    args = parser.parse_args()

    base = {
        **os.environ,
        "STORAGE_URL": f"file://{tempfile.mkdtemp()}",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "WEB_CONCURRENCY": "2",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    results: dict[str, list[float]] = {"satchel web": [], "hello-world (baseline)": []}
    for _ in range(args.runs):
        port = free_port()
        env = {**base, "PORT": str(port)}
        results["satchel web"].append(
            time_to_first_200([sys.executable, "-m", "satchel", "web"], env, f"http://127.0.0.1:{port}/healthz")
        )
        port = free_port()
        hello = [gunicorn, "--chdir", str(HERE), "-w", "2", "-k", "uvicorn_worker.UvicornWorker",
                 "--no-control-socket", "-b", f"127.0.0.1:{port}", "hello_asgi:app"]  # fmt: skip
        results["hello-world (baseline)"].append(time_to_first_200(hello, env, f"http://127.0.0.1:{port}/"))

    satchel, hello = (statistics.median(v) for v in results.values())
    lines = [
        "# Web start-up: exec to first 200",
        "",
        f"{args.runs} runs each, median; WEB_CONCURRENCY=2; {os.cpu_count()} cores.",
        "",
        "| process | median s | min s | max s |",
        "|---|---|---|---|",
        *(f"| {name} | {statistics.median(v):.2f} | {min(v):.2f} | {max(v):.2f} |" for name, v in results.items()),
        "",
        f"Ratio satchel / baseline: **{satchel / hello:.2f}x**. Target: under 2 s absolute.",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
