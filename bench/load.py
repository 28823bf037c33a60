"""HTTP load with wrk: requests per second and the latency distribution of one endpoint.

wrk runs on the same cores as the server it loads, as in the issue's measurements; every figure is
therefore read next to a baseline loaded the same way in the same run, never on its own.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
WRK_MISSING = "wrk is not installed: apt-get install wrk (python3 tasks.py bench installs it when run as root)"


@dataclass(frozen=True)
class Load:
    """What wrk saw: throughput, latency percentiles (ms) and the requests that failed."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors (connect, read, write, timeout) and non-2xx/3xx answers

    @property
    def error_share(self) -> float:
        return self.errors / max(self.requests, 1)


def require_wrk() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(WRK_MISSING)
    return found


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def parse_wrk(output: str) -> Load:
    """The numbers of a ``wrk --latency`` report."""

    def find(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return match.group(1)

    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = sum(int(n) for n in socket.groups()) if socket else 0
    errors += int(refused.group(1)) if refused else 0
    return Load(
        rps=float(find(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        requests=int(find(r"^\s+(\d+) requests in")),
        errors=errors,
    )


def wrk(
    url: str, *, seconds: int, connections: int = 64, threads: int = 2, headers: Sequence[str] = (), warmup: int = 1
) -> Load:
    """Load ``url`` for ``seconds`` after ``warmup`` seconds whose numbers are dropped (connections, lazy imports)."""
    command = [require_wrk(), f"-t{threads}", f"-c{connections}", "--latency", "--timeout", "5s"]
    for header in headers:
        command += ["-H", header]
    if warmup:
        subprocess.run([*command, f"-d{warmup}s", url], capture_output=True, check=True)
    done = subprocess.run([*command, f"-d{seconds}s", url], capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)
