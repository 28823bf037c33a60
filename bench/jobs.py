"""Job throughput and enqueue-to-start latency of the worker tier (outbox -> relay -> broker -> worker).

Baseline in the same run: the broker alone, a Celery task that does nothing, sent straight to the
broker with no outbox, so the ratio shows what the transactional outbox and the job bookkeeping cost.

    .venv/bin/python bench/jobs.py [--jobs 500] [--broker redis://…|amqp://…]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))

from scratch import scratch_satchel, write_table  # noqa: E402
from support.processes import SatchelProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--broker", default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "jobs.md")
    args = parser.parse_args()

    broker = args.broker or urlunsplit(urlsplit(os.environ["REDIS_URL"])._replace(path="/13"))
    settings = {"BROKER_URL": broker, "STORAGE_URL": "memory://", "LOG_LEVEL": "INFO", "SATCHEL_SWEEP_INTERVAL": "0"}
    with scratch_satchel(**settings) as (env, _):
        latencies, idle, enqueued, total, baseline = _measure(env, args.jobs)

    latencies_ms = sorted(float(x) * 1000 for x in latencies)
    p50 = statistics.median(latencies_ms)
    p95 = latencies_ms[int(len(latencies_ms) * 0.95) - 1]
    lines = [
        f"# Jobs: {args.jobs} ping jobs, 1 worker (concurrency 2), broker {urlsplit(broker).scheme}://",
        "",
        "| measure | value |",
        "|---|---|",
        f"| enqueue (outbox insert + NOTIFY, one transaction each) | {args.jobs / enqueued:.0f} jobs/s |",
        f"| end-to-end throughput (enqueued to done) | {args.jobs / total:.0f} jobs/s |",
        f"| baseline: bare Celery no-op tasks, no outbox | {baseline:.0f} tasks/s |",
        f"| ratio satchel / baseline | {args.jobs / total / baseline:.2f}x |",
        f"| enqueue-to-start latency p50 | {p50:.0f} ms |",
        f"| enqueue-to-start latency p95 | {p95:.0f} ms |",
        f"| enqueue-to-start latency on an idle worker, median of 20 | {statistics.median(idle):.0f} ms |",
        "",
        "The p50/p95 latencies include the queue of jobs ahead (all are enqueued at once); the idle figure is",
        "what a single upload's scan or thumbnail waits: NOTIFY wakes the relay, one broker hop, one claim.",
    ]
    write_table(lines, args.out)


def _measure(env: dict[str, str], jobs: int) -> tuple[list[float], list[float], float, float, float]:
    """Latencies (s), idle latencies (ms), enqueue and total seconds for ``jobs`` jobs, and the baseline rate."""
    worker = SatchelProcess("worker", "--concurrency", "2", env=env)
    try:
        worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
        time.sleep(1)
        started = time.perf_counter()
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            for _ in range(jobs):
                job = secrets.token_hex(16)
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO jobs (id, kind, queue, payload) VALUES (%s, 'ping', 'default', '{}')", [job]
                    )
                    conn.execute("SELECT pg_notify('satchel_jobs', %s)", [job])
            enqueued = time.perf_counter() - started
            while conn.execute("SELECT count(*) FROM jobs WHERE status <> 'done'").fetchone()[0]:
                time.sleep(0.05)
            total = time.perf_counter() - started
            latencies = [
                r[0] for r in conn.execute("SELECT extract(epoch FROM started_at - created_at) FROM jobs").fetchall()
            ]
            idle = []
            for _ in range(20):  # one job at a time on an idle worker: the latency a user's upload sees
                job = secrets.token_hex(16)
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO jobs (id, kind, queue, payload) VALUES (%s, 'ping', 'default', '{}')", [job]
                    )
                    conn.execute("SELECT pg_notify('satchel_jobs', %s)", [job])
                while True:
                    query = (
                        "SELECT extract(epoch FROM started_at - created_at) FROM jobs WHERE id = %s AND status = 'done'"
                    )
                    row = conn.execute(query, [job]).fetchone()
                    if row:
                        idle.append(float(row[0]) * 1000)
                        break
                    time.sleep(0.01)
        baseline = _baseline(env, jobs)
    finally:
        worker.stop()
    return latencies, idle, enqueued, total, baseline


def _baseline(env: dict[str, str], count: int) -> float:
    """Celery alone: a no-op task through the same broker and worker settings, results counted in Redis."""
    code = f"""
import time, redis
from celery import Celery
app = Celery("baseline", broker={env["BROKER_URL"]!r})
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)
r = redis.Redis.from_url({env["REDIS_URL"]!r})
@app.task(name="noop")
def noop():
    r.incr("satchel:bench:noop")
if __name__ == "__main__":
    import sys
    if sys.argv[1] == "worker":
        app.worker_main(["--quiet", "worker", "--concurrency=2", "--loglevel=WARNING", "-Q", "bench"])
    else:
        r.delete("satchel:bench:noop")
        start = time.perf_counter()
        for _ in range({count}):
            app.send_task("noop", queue="bench")
        while int(r.get("satchel:bench:noop") or 0) < {count}:
            time.sleep(0.05)
        print({count} / (time.perf_counter() - start))
"""
    script = Path(env.get("TMPDIR", "/tmp")) / f"satchel_bench_{os.getpid()}.py"
    script.write_text(code)
    worker = subprocess.Popen([sys.executable, str(script), "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(3)
        out = subprocess.run([sys.executable, str(script), "send"], env=env, capture_output=True, text=True)
        return float(out.stdout.strip())
    finally:
        worker.terminate()
        worker.wait(30)
        script.unlink()


if __name__ == "__main__":
    main()
