"""Every benchmark in one run, against a real ``satchel web`` and the baselines it is compared with.

    python3 tasks.py bench [--quick] [--duration S] [--size-mib N] [--runs N] [--soak S] [--workers 1,2,4]

(or ``.venv/bin/python bench/run.py …`` in the project's environment). Uses DATABASE_URL and REDIS_URL
when set, else starts an embedded PostgreSQL and Redis of its own; the Satchel it measures lives in a
scratch database that is dropped afterwards. Writes bench/RESULTS.md and the plots in bench/results/.

Sections, in order: the scaling curve (small requests at 1, 2 and 4 workers), memory under sustained
load, start-up, big transfers. A section that fails is reported as failed and the run goes on; every
process and database it started is gone when it ends, however it ends.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # support.processes: accounts made as an operator makes them

import machine  # noqa: E402
import plots  # noqa: E402
import report  # noqa: E402
import scaling  # noqa: E402
import startup  # noqa: E402
import transfers  # noqa: E402
from load import require_wrk  # noqa: E402

from satchel.runtime.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402

from scratch import scratch_satchel  # noqa: E402
from support.processes import create_account  # noqa: E402

CONNECTIONS = 64
SECTIONS = ("load", "soak", "startup", "transfers")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short runs (3 s loads, 128 MiB, 10 s soak): ~3 min")
    parser.add_argument("--duration", type=int, help="seconds of each wrk load (default 10; quick 3)")
    parser.add_argument("--size-mib", type=int, help="size of the transferred file (default 1024; quick 128)")
    parser.add_argument("--runs", type=int, help="starts of each process type, for the median (default 5; quick 2)")
    parser.add_argument("--soak", type=int, help="seconds of load for the memory check (default 60; quick 10)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts of the scaling curve (default 1,2,4)")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the measured Satchel (default INFO, its own)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which to run (default {','.join(SECTIONS)})")
    parser.add_argument("--logs", type=Path, help="keep every server's log here (default: removed with the run)")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3 if quick else 10)
    args.size_mib = args.size_mib or (128 if quick else 1024)
    args.runs = args.runs or (2 if quick else 5)
    args.soak = args.soak or (10 if quick else 60)
    args.worker_counts = [int(w) for w in args.workers.split(",")]
    if unknown := set(args.sections.split(",")) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


def backing_services(stack: ExitStack, work: Path) -> str:
    """DATABASE_URL and REDIS_URL in this environment (for every process started from here); what they are."""
    found = []
    if os.environ.get("DATABASE_URL"):
        found.append("PostgreSQL from DATABASE_URL")
    else:
        postgres = EmbeddedPostgres(work / "postgres", durable=False)
        stack.callback(postgres.stop)
        os.environ["DATABASE_URL"] = postgres.start()
        found.append("embedded PostgreSQL (fsync off)")
    if os.environ.get("REDIS_URL"):
        found.append("Redis from REDIS_URL")
    else:
        redis = EmbeddedRedis(work / "redis", durable=False)
        stack.callback(redis.stop)
        os.environ["REDIS_URL"] = redis.start()
        found.append("embedded Redis (no persistence)")
    return ", ".join(found)


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {message}", flush=True)


def section(results: report.Results, name: str, progress: Progress, measure: Callable[[], None]) -> None:
    """Run one section; a failure is recorded and reported, and the next section still runs."""
    progress(f"{name}: starting")
    try:
        measure()
    except Exception as exc:  # whatever broke, the other sections' numbers are still worth having
        traceback.print_exc()
        results.failures[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        progress(f"{name}: FAILED ({results.failures[name]})")
    else:
        progress(f"{name}: done")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    require_wrk()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind the ExitStack: stop servers, drop databases
    progress = Progress()
    command = "python3 tasks.py bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    results = report.Results(
        command=command.strip(),
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_seconds=args.duration,
        connections=CONNECTIONS,
        worker_counts=args.worker_counts,
        runs=args.runs,
    )
    results.load_average["at the start"] = machine.load_average()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="satchel-bench-")))
        logs = args.logs.resolve() if args.logs else work / "logs"
        progress(f"work folder {work}, server logs in {logs}")
        backing = backing_services(stack, work)
        results.machine = machine.facts(backing)
        settings = {"SATCHEL_WORKER_CONCURRENCY": "2", "LOG_LEVEL": args.log_level}
        env, _ = stack.enter_context(scratch_satchel(**settings))
        seeded = scaling.seed(env, create_account(env, "bench@example.test"), logs / "seed.log")
        progress(f"seeded: an account, an API token and a public share at {seeded.share_path}")

        def load() -> None:
            results.load = scaling.measure(env, seeded, args.worker_counts, args.duration, logs, progress)

        def soak() -> None:
            results.soak = scaling.soak(env, seeded, args.soak, 2 if args.quick else 5, logs)

        def starts() -> None:
            results.startup = startup.measure(env, args.runs, progress)

        def moves() -> None:
            results.transfers = transfers.Transfers(args.size_mib)
            transfers.measure_curl(results.transfers, env, seeded.token, work, logs, rounds=3)
            progress("transfers: curl next to cp, Flask and nginx done; now the scripts (transfer, s3, import)")
            transfers.measure_scripts(results.transfers, work, logs)

        chosen = args.sections.split(",")
        for name, measure in (("load", load), ("soak", soak), ("startup", starts), ("transfers", moves)):
            if name in chosen:
                section(results, name, progress, measure)
    results.load_average["at the end"] = machine.load_average()
    results.duration_s = time.monotonic() - progress.started
    results.plots = plots.draw(results.load, args.out.parent / "results", CONNECTIONS)
    args.out.write_text(report.render(results))
    progress(f"wrote {args.out} and {', '.join(p.name for p in results.plots) or 'no plots'}")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
