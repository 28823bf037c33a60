"""Small requests under load: Satchel's endpoints and the baselines, at 1, 2 and 4 worker processes.

For each worker count, Satchel (``WEB_CONCURRENCY``) and every baseline (``-w``) are started in turn and
loaded the same way, so each ratio compares two servers measured seconds apart on the same cores.
Afterwards, the soak: a Satchel web worker's memory before and after a long load on the share page.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from load import Load, wrk
from servers import Server, asgi_baseline, flask_baseline, satchel_web, serving

from satchel.runtime.embedded import free_port

ENDPOINTS = {  # name -> what the tables call it
    "share": "Satchel share page `GET /s/{token}`",
    "healthz": "Satchel `GET /healthz`",
    "api_files": "Satchel `GET /api/files` (API token)",
    "asgi": "bare ASGI hello-world `GET /`",
    "fastapi": "minimal FastAPI JSON route `GET /`",
    "flask": "Flask file host index `GET /` (sync workers)",
}
SATCHEL_ENDPOINTS = ("share", "healthz", "api_files")


@dataclass(frozen=True)
class Seed:
    """What the scratch Satchel holds for the load: an account's API token and a public share of a small file."""

    token: str
    share_path: str  # /s/{token}


def seed(env: dict[str, str], token: str, log: Path) -> Seed:
    """Upload a small file with ``token``, as a user would; its share link is public."""
    url = f"http://127.0.0.1:{env['PORT']}"
    with serving(satchel_web(env, 1, log), f"{url}/healthz"):
        body = b"Satchel benchmark: a small shared file.\n" * 100
        response = httpx.put(f"{url}/api/files/notes.txt", content=body, headers=_bearer(token), timeout=30)
        response.raise_for_status()
        share_path = httpx.URL(response.json()["share"]["url"]).path
        for path, headers in ((share_path, {}), ("/api/files", _bearer(token))):
            httpx.get(f"{url}{path}", headers=headers, timeout=30).raise_for_status()
    return Seed(token, share_path)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def measure(
    env: dict[str, str],
    seeded: Seed,
    worker_counts: list[int],
    seconds: int,
    logs: Path,
    progress: Callable[[str], None],
) -> dict[tuple[str, int], Load]:
    """(endpoint, workers) -> what wrk saw, for every endpoint of ``ENDPOINTS`` and worker count."""
    results: dict[tuple[str, int], Load] = {}
    for workers in worker_counts:
        url = f"http://127.0.0.1:{env['PORT']}"
        with serving(satchel_web(env, workers, logs / f"web-{workers}.log"), f"{url}/healthz"):
            paths = {"share": (seeded.share_path, ()), "healthz": ("/healthz", ())}
            paths["api_files"] = ("/api/files", (f"Authorization: Bearer {seeded.token}",))
            for name, (path, headers) in paths.items():
                results[name, workers] = wrk(f"{url}{path}", seconds=seconds, headers=headers)
                progress(_line(name, workers, results[name, workers]))
        for name in ("asgi", "fastapi", "flask"):
            port = free_port()
            with serving(_baseline(name, port, workers, logs), f"http://127.0.0.1:{port}/"):
                results[name, workers] = wrk(f"http://127.0.0.1:{port}/", seconds=seconds)
            progress(_line(name, workers, results[name, workers]))
    return results


def _baseline(name: str, port: int, workers: int, logs: Path) -> Server:
    log = logs / f"{name}-{workers}.log"
    if name == "flask":
        return flask_baseline(port, workers, log, dict(os.environ))
    app = {"asgi": "hello_asgi:app", "fastapi": "hello_fastapi:app"}[name]
    return asgi_baseline(app, port, workers, log, dict(os.environ))


def _line(name: str, workers: int, load: Load) -> str:
    errors = f", {load.errors} errors" if load.errors else ""
    return f"{name:>9} x{workers}: {load.rps:8.0f} req/s, p50 {load.p50_ms:6.1f} ms, p99 {load.p99_ms:6.1f} ms{errors}"


@dataclass
class Soak:
    """Web worker RSS (bytes, by pid) at rest, after a warm-up and after ``seconds`` of load on the share page."""

    seconds: int
    workers: int
    at_rest: dict[int, int]
    warm: dict[int, int]
    after: dict[int, int]
    load: Load

    @property
    def change(self) -> float:
        """The largest growth of one worker from warm to after the soak (0.05 = 5 %)."""
        return max(self.after[pid] / self.warm[pid] - 1 for pid in self.warm if pid in self.after)

    @property
    def same_workers(self) -> bool:
        return set(self.warm) == set(self.after)


def _rss(server: Server) -> dict[int, int]:
    found = {}
    for worker in server.workers():
        try:
            found[worker.pid] = worker.memory_info().rss
        except psutil.Error:
            continue
    return found


def soak(env: dict[str, str], seeded: Seed, seconds: int, warmup: int, logs: Path, workers: int = 2) -> Soak:
    url = f"http://127.0.0.1:{env['PORT']}"
    with serving(satchel_web(env, workers, logs / "soak-web.log"), f"{url}/healthz") as web:
        time.sleep(1)  # each reading a second after the load stops: no request holds memory then
        at_rest = _rss(web)
        wrk(f"{url}{seeded.share_path}", seconds=warmup, warmup=0)
        time.sleep(1)
        warm = _rss(web)
        load = wrk(f"{url}{seeded.share_path}", seconds=seconds, warmup=0)
        time.sleep(1)
        after = _rss(web)
    return Soak(seconds, workers, at_rest, warm, after, load)
