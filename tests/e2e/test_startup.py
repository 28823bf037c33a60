"""How the processes start (factor IX): each loads only its own stack, and loads it once.

Behaviour only: how long a start takes is measured in ``bench/startup.py``. What a process tree imported
is read from Python's own import log (``PYTHONPROFILEIMPORTTIME``), which every process of the tree,
forked children included, writes to the same stderr.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import pytest

from support.processes import SatchelProcess, run_satchel, running_web

IMPORT_LOG = {"PYTHONPROFILEIMPORTTIME": "1"}
WEB_ONLY = ("fastapi", "starlette", "jinja2", "uvicorn", "gunicorn")
WORKER_ONLY = ("celery", "kombu", "billiard")


def imported(stderr_lines: list[str]) -> Counter[str]:
    """How many times each module was imported across the process tree, from its import log."""
    names = (line.rpartition("|")[2].strip() for line in stderr_lines if line.startswith("import time:"))
    return Counter(name for name in names if name != "imported package")  # the header line


def packages(modules: Counter[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


# --- satchel --version ------------------------------------------------------------------------------


def test_version_answers_without_a_valid_configuration() -> None:
    env = {"PATH": os.environ["PATH"], "RELEASE_ID": "v7-abc", "DATABASE_URL": "mysql://nope", "PORT": "eighty"}
    result = run_satchel("--version", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("satchel ") and result.stdout.strip().endswith("(release v7-abc)")


def test_version_names_the_release_the_settings_would_without_release_id(base_env: dict[str, str]) -> None:
    env = {k: v for k, v in base_env.items() if k != "RELEASE_ID"}
    version = run_satchel("--version", env=env)
    config = run_satchel("config", env=env)
    assert version.returncode == 0 and config.returncode == 0, version.stderr + config.stderr
    rows = {line.split()[0]: line.split()[1] for line in config.stdout.splitlines()}
    assert version.stdout.strip().endswith(f"(release {rows['RELEASE_ID']})")


def test_version_loads_neither_the_settings_nor_a_process_stack() -> None:
    env = {"PATH": os.environ["PATH"], "RELEASE_ID": "v7", **IMPORT_LOG}
    result = run_satchel("--version", env=env)
    assert result.returncode == 0, result.stderr
    loaded = packages(imported(result.stderr.splitlines()))
    assert "satchel" in loaded, "the import log was read"
    assert not loaded & {"pydantic", "pydantic_settings", "structlog", *WEB_ONLY, *WORKER_ONLY}
    assert "satchel.settings" not in imported(result.stderr.splitlines())


# --- satchel web ------------------------------------------------------------------------------------


def test_web_loads_the_application_once_before_its_workers_fork_and_no_job_stack(base_env: dict[str, str]) -> None:
    process = SatchelProcess("web", env={**base_env, **IMPORT_LOG})
    try:
        process.wait_http(f"http://127.0.0.1:{base_env['PORT']}/healthz")
        process.wait_for(lambda: _count(process, "Application startup complete.") == 2, what="both workers started")
    finally:
        process.stop()
    modules = imported(process.stderr_lines)
    assert modules["satchel.web.app"] == 1, "one import in the arbiter; the two workers fork with it loaded"
    assert modules["fastapi"] == 1
    assert not packages(modules) & {*WORKER_ONLY, "PIL"}


def _count(process: SatchelProcess, event: str) -> int:
    return sum(1 for e in process.events_so_far() if e.get("event") == event)


@pytest.fixture
def web(base_env: dict[str, str]) -> Iterator[tuple[SatchelProcess, str]]:
    with running_web(base_env) as (process, url):
        yield process, url
    assert process.process.returncode == 0


def workers_of(process: SatchelProcess) -> set[int]:
    return {child.pid for child in psutil.Process(process.process.pid).children()}


def backing_sockets(pid: int, env: dict[str, str]) -> set[tuple[str, int]]:
    """The local ends of the process's connections to PostgreSQL and Redis: a socket inherited across a
    fork would show the same local end in two processes."""
    ports = {urlsplit(env["DATABASE_URL"]).port or 5432, urlsplit(env["REDIS_URL"]).port or 6379}
    return {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(pid).net_connections("tcp")
        if c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED
    }


def _readyz(url: str) -> int:
    return httpx.get(f"{url}/readyz", timeout=10).status_code  # a connection of its own: any worker may take it


def until_every_worker_connected(
    process: SatchelProcess, url: str, env: dict[str, str]
) -> dict[int, set[tuple[str, int]]]:
    """Ask /readyz (database, Redis, storage) in small concurrent bursts until every current worker has
    connected to PostgreSQL and Redis; returns each worker's connections."""
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while True:
            workers = workers_of(process)
            sockets = {pid: backing_sockets(pid, env) for pid in workers}
            if len(workers) == int(env["WEB_CONCURRENCY"]) and all(sockets.values()):
                return sockets
            assert sent < 2000, f"a worker never connected: {sockets}"
            assert list(pool.map(_readyz, [url] * 20)) == [200] * 20
            sent += 20


def test_each_web_worker_opens_its_own_connections_and_the_arbiter_none(
    web: tuple[SatchelProcess, str], base_env: dict[str, str]
) -> None:
    process, url = web
    sockets = until_every_worker_connected(process, url, base_env)
    first, second = sockets.values()
    assert not first & second, "no connection is shared across the fork"
    assert backing_sockets(process.process.pid, base_env) == set(), "the arbiter loads the app but connects to nothing"


def test_a_killed_web_worker_is_replaced_by_one_that_serves(
    web: tuple[SatchelProcess, str], base_env: dict[str, str]
) -> None:
    process, url = web
    victim = min(until_every_worker_connected(process, url, base_env))
    os.kill(victim, signal.SIGKILL)
    process.wait_for(lambda: len(workers_of(process) - {victim}) == 2, what="a replacement worker")
    sockets = until_every_worker_connected(process, url, base_env)
    assert victim not in sockets
    first, second = sockets.values()
    assert not first & second


def test_sighup_replaces_every_web_worker_and_they_serve(
    web: tuple[SatchelProcess, str], base_env: dict[str, str]
) -> None:
    process, url = web
    before = set(until_every_worker_connected(process, url, base_env))
    process.signal(signal.SIGHUP)
    process.wait_for(
        lambda: len(workers_of(process)) == 2 and not workers_of(process) & before, what="a new set of workers"
    )
    sockets = until_every_worker_connected(process, url, base_env)
    first, second = sockets.values()
    assert not first & second
    assert backing_sockets(process.process.pid, base_env) == set()


# --- satchel worker ---------------------------------------------------------------------------------


@pytest.mark.xdist_group("broker")  # workers share queue names on a broker: one test at a time
def test_worker_and_its_relay_load_the_job_stack_once_and_no_web_stack(
    base_env: dict[str, str], own_database: str
) -> None:
    parts = urlsplit(base_env["REDIS_URL"])  # a broker database of its own, as the other worker tests
    broker = urlunsplit(parts._replace(path="/15" if parts.path != "/15" else "/14"))
    env = {**base_env, "DATABASE_URL": own_database, "BROKER_URL": broker, **IMPORT_LOG}
    worker = SatchelProcess("worker", "--concurrency", "1", env=env)
    try:
        worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
        relay = worker.wait_for_event("relay.started")
        relay_pid = int(relay["worker"].rpartition(":")[2])
        assert psutil.Process(relay_pid).ppid() == worker.process.pid
    finally:
        worker.stop()
    assert worker.process.returncode == 0
    modules = imported(worker.stderr_lines)
    assert modules["satchel.settings"] == 1, "the relay forks with the worker's code loaded, not a fresh interpreter"
    assert modules["celery"] == 1
    assert not packages(modules) & set(WEB_ONLY)
