"""Start-up as an operator sees it: exec of a process to the moment it serves (factor IX).

- ``satchel web``: exec of the ``satchel`` console script (as the Procfile and the image start it), with
  WEB_CONCURRENCY=2 and the default LOG_LEVEL, to the first 200 on ``/healthz``. Its stdout is read as a
  container runtime reads it, and gives the phases: the CLI until Gunicorn starts, and the moment every
  worker, not only the first, has finished starting its application.
- ``satchel worker --queues default,mail``: exec to its "ready" log line (Celery's ``… ready.``).
- Baselines on the same stacks, in the same run: a bare ASGI hello-world under Gunicorn with the same worker
  settings (exec of ``gunicorn``), and a bare Celery app on the same broker (exec of ``celery``).

Beside each wall-clock figure, the CPU seconds the whole process tree had used by then (every process it
started, the exited ones included): on a shared machine the wall clock also counts the time others' work
took from the cores, while the CPU a start costs moves far less with the load, so a change to the start
shows in that column even when the machine is busy.

Why the first published figure (1.2 s) and a later by-hand one (4.3 to 5.1 s) differed is measured, not argued:
the same run also times the method of the first bench (``python -m satchel web``, output discarded) and a
start with no cached bytecode (a fresh ``PYTHONPYCACHEPREFIX``, nothing written), the state of a checkout
whose sources just changed or of an environment that never kept its ``.pyc`` files.

    .venv/bin/python bench/startup.py [--runs 5]

Needs DATABASE_URL and REDIS_URL (a scratch database is created and dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from servers import BIN, baseline_env, gunicorn_options

import satchel
from satchel.runtime.embedded import free_port

from scratch import scratch_satchel, write_table

HERE = Path(__file__).resolve().parent

WEB_CONCURRENCY = 2
WORKER_QUEUES = "default,mail"  # the Procfile's worker
GUNICORN_STARTED = re.compile(r"Starting gunicorn")
APP_STARTED = re.compile(r"Application startup complete")
WORKER_READY = re.compile(r"\bready\b", re.IGNORECASE)


@dataclass
class Start:
    """One exec: seconds to serving, and the phases its log showed (None when it did not say)."""

    seconds: float
    cli: float | None = None  # exec to "Starting gunicorn": the CLI, and the app too when the arbiter preloads it
    all_workers: float | None = None  # exec to the last worker's "Application startup complete"
    cpu: float | None = None  # CPU seconds (user + system) of the whole process tree when it first served


@dataclass
class Samples:
    label: str
    starts: list[Start] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.starts)

    def median_of(self, phase: str) -> float | None:
        values = [getattr(s, phase) for s in self.starts if getattr(s, phase) is not None]
        return statistics.median(values) if len(values) == len(self.starts) else None


class Watched:
    """A process whose stdout (and stderr) lines are timestamped on arrival, from the moment of its exec."""

    def __init__(self, command: Sequence[str], env: dict[str, str], *, discard: bool = False) -> None:
        self.lines: list[tuple[float, str]] = []
        self.started = time.perf_counter()
        out = subprocess.DEVNULL if discard else subprocess.PIPE
        self.process = subprocess.Popen(
            [str(c) for c in command], env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        if not discard:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.perf_counter() - self.started, line))

    def first(self, pattern: re.Pattern[str], count: int = 1) -> float | None:
        """Seconds from exec to the ``count``-th line whose log event matches ``pattern``."""
        seen = [at for at, line in list(self.lines) if pattern.search(_event(line))]
        return seen[count - 1] if len(seen) >= count else None

    def until(self, done: Callable[[], float | None], timeout: float, what: str) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (at := done()) is not None:
                return at
            if self.process.poll() is not None:
                raise RuntimeError(f"exited ({self.process.returncode}) before {what}:\n{self.output()}")
            time.sleep(0.005)
        raise RuntimeError(f"no {what} within {timeout:g}s:\n{self.output()}")

    def cpu(self) -> float | None:
        """CPU seconds the process and all it started have used so far (exited children as their parents
        collected them); None when the process is gone."""
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return None
        total = 0.0
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue  # ended between the listing and now
            total += times.user + times.system + times.children_user + times.children_system
        return total

    def stop(self) -> None:
        """SIGKILL to the whole group: a graceful stop is not what is measured, and would only add to the run."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def output(self) -> str:
        return "".join(line for _, line in self.lines[-30:])


def _event(line: str) -> str:
    """The event of a JSON log line (the whole line when it is not JSON)."""
    try:
        parsed = json.loads(line)
    except ValueError:
        return line
    return str(parsed.get("event", "")) if isinstance(parsed, dict) else line


def _answers(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return time.perf_counter() if response.status == 200 else None
    except OSError:
        return None


def time_to_first_200(command: Sequence[str], env: dict[str, str], url: str, *, discard: bool = False) -> Start:
    """Exec of ``command`` to the first 200 from ``url``; with its log read, the phases too."""
    process = Watched(command, env, discard=discard)
    try:
        first = process.until(lambda: _answers(url), 120, f"200 from {url}") - process.started
        start = Start(first, cpu=process.cpu())
        if not discard:
            start.cli = process.first(GUNICORN_STARTED)
            workers = int(env.get("WEB_CONCURRENCY", "1"))
            deadline = time.monotonic() + 30  # a log that no longer says so leaves the phase blank
            while (every := process.first(APP_STARTED, workers)) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            start.all_workers = every
        return start
    finally:
        process.stop()


def time_to_ready(command: Sequence[str], env: dict[str, str]) -> Start:
    process = Watched(command, env)
    try:
        ready = process.until(lambda: process.first(WORKER_READY), 120, "the ready line")
        return Start(ready, cpu=process.cpu())
    finally:
        process.stop()


def compile_bytecode() -> None:
    """Satchel's bytecode, written once as the image's build writes it: the rows other than "no cached
    bytecode" then start as production does, even where ``PYTHONDONTWRITEBYTECODE`` is set and the
    sources changed since their ``.pyc`` files were last written (which would compile them at every start)."""
    package = Path(satchel.__file__).parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL)


def measure(env: dict[str, str], runs: int, progress: Callable[[str], None] = print) -> dict[str, Samples]:
    """Every start-up, ``runs`` times, the variants taking turns so that noise falls on each alike."""
    compile_bytecode()
    web_env = {k: v for k, v in env.items() if k != "LOG_LEVEL"} | {"WEB_CONCURRENCY": str(WEB_CONCURRENCY)}
    results = {
        "web": Samples("`satchel web` (console script, default LOG_LEVEL)"),
        "web_python_m": Samples("`python -m satchel web`, output discarded (the first bench's method)"),
        "web_cold": Samples("`satchel web`, no cached bytecode"),
        "hello": Samples("bare ASGI hello-world, `gunicorn` (baseline)"),
        "worker": Samples(f"`satchel worker --queues {WORKER_QUEUES}` to ready"),
        "celery": Samples("bare Celery app, `celery worker` to ready (baseline)"),
    }
    for run in range(runs):
        for name, samples in results.items():
            port = free_port()
            url = f"http://127.0.0.1:{port}/healthz"
            run_env = {**web_env, "PORT": str(port)}
            if name == "web":
                start = time_to_first_200([BIN / "satchel", "web"], run_env, url)
            elif name == "web_python_m":
                start = time_to_first_200([sys.executable, "-m", "satchel", "web"], run_env, url, discard=True)
            elif name == "web_cold":
                with tempfile.TemporaryDirectory(prefix="satchel-pycache-") as cache:
                    cold = {**run_env, "PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": "1"}
                    start = time_to_first_200([BIN / "satchel", "web"], cold, url)
            elif name == "hello":
                hello = [BIN / "gunicorn", "--chdir", HERE, "-k", "baseline_worker.BaselineWorker"]
                hello += [*gunicorn_options(port, WEB_CONCURRENCY), "hello_asgi:app"]
                start = time_to_first_200(hello, baseline_env(run_env), f"http://127.0.0.1:{port}/", discard=True)
            elif name == "worker":
                worker = [BIN / "satchel", "worker", "--queues", WORKER_QUEUES]
                start = time_to_ready(worker, {**env, "LOG_LEVEL": "INFO"})
            else:
                celery = [BIN / "celery", "--workdir", HERE, "-A", "hello_celery", "worker", "--loglevel", "INFO"]
                celery += ["--concurrency", env.get("SATCHEL_WORKER_CONCURRENCY", "2"), "--without-gossip"]
                start = time_to_ready([*celery, "--without-mingle", "--queues", "bench"], env)
            samples.starts.append(start)
        latest = ", ".join(f"{name} {samples.starts[-1].seconds:.2f} s" for name, samples in results.items())
        progress(f"start-up run {run + 1}/{runs}: {latest}")
    return results


def table(results: dict[str, Samples], runs: int) -> list[str]:
    hello, celery = results["hello"].median, results["celery"].median

    def row(samples: Samples, baseline: float) -> str:
        values = [s.seconds for s in samples.starts]
        phases = [samples.median_of("cli"), samples.median_of("all_workers"), samples.median_of("cpu")]
        cli, every, cpu = (f"{v:.2f}" if v is not None else "—" for v in phases)
        return (
            f"| {samples.label} | {samples.median:.2f} | {min(values):.2f} | {max(values):.2f} | "
            f"{cli} | {every} | {cpu} | {samples.median / baseline:.1f}x |"
        )

    return [
        f'Median of {runs} runs each, taking turns; WEB_CONCURRENCY={WEB_CONCURRENCY}. "first 200" is the first',
        'answer from any worker; "all workers" is when the last one finished starting its application; "CPU" is',
        "what the whole process tree had used by its first 200 or ready line (it moves far less with the load).",
        "",
        '| process | first 200 / ready, median s | min s | max s | to "Starting gunicorn", s | all workers, s '
        "| CPU s, median | vs baseline |",
        "|---|---|---|---|---|---|---|---|",
        *(row(results[name], hello) for name in ("web", "web_python_m", "web_cold", "hello")),
        *(row(results[name], celery) for name in ("worker", "celery")),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.md")
    args = parser.parse_args()
    with scratch_satchel(SATCHEL_WORKER_CONCURRENCY="2") as (env, _):
        results = measure(env, args.runs)
    write_table(["# Start-up: exec to serving", "", *table(results, args.runs)], args.out)


if __name__ == "__main__":
    main()
