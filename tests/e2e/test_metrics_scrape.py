"""Scraping real processes: ``satchel web`` (two Gunicorn workers) and ``satchel worker`` on SATCHEL_METRICS_PORT.

Each process tree keeps its samples in a private directory named in its ``metrics.directory`` log event;
the tests look into it to see which processes wrote what, and that it is gone once the process is.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg
import pytest
import redis
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from satchel.runtime.embedded import free_port

from support.metrics import value
from support.processes import SatchelProcess, create_account, running_web


def scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def metrics_directory(process: SatchelProcess) -> Path:
    event = process.wait_for_event("metrics.directory")
    assert event["private"] is True
    return Path(event["directory"])


def pids_with(directory: Path, kind: str) -> set[int]:
    """The processes that wrote samples of this kind (``counter``, ``gauge_livemax``) to the directory."""
    return {int(file.stem.rpartition("_")[2]) for file in directory.glob(f"{kind}_*.db")}


def served_by(directory: Path) -> set[int]:
    """The processes whose own files count at least one answered request."""
    return {
        pid
        for pid in pids_with(directory, "counter")
        if value_in_file(directory / f"counter_{pid}.db", "satchel_http_requests_total") > 0
    }


def value_in_file(file: Path, name: str) -> float:
    try:
        families = MultiProcessCollector.merge([str(file)])
    except FileNotFoundError:
        return 0
    return sum(sample.value for family in families for sample in family.samples if sample.name == name)


def workers_of(process: SatchelProcess) -> set[int]:
    return {child.pid for child in psutil.Process(process.process.pid).children()}


@pytest.fixture
def web_env(base_env: dict[str, str]) -> dict[str, str]:
    return {**base_env, "WEB_CONCURRENCY": "2", "SATCHEL_METRICS_PORT": str(free_port())}


def _healthz(url: str) -> int:
    return httpx.get(f"{url}/healthz", timeout=10).status_code  # a connection of its own, so any worker may take it


def _until_every_worker_answered(process: SatchelProcess, url: str, directory: Path) -> int:
    """Send /healthz in small concurrent bursts until both workers have counted some; returns how many were sent."""
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while not workers_of(process) <= served_by(directory):
            assert sent < 2000, "one worker never took a request"
            assert list(pool.map(_healthz, [url] * 20)) == [200] * 20
            sent += 20
    return sent


def test_the_metrics_port_adds_up_the_traffic_of_every_web_worker(web_env: dict[str, str]) -> None:
    token = create_account(web_env, f"metrics-{uuid.uuid4().hex[:8]}@example.test")
    auth = {"Authorization": f"Bearer {token}"}
    data = os.urandom(200_003)
    port = int(web_env["SATCHEL_METRICS_PORT"])
    with running_web(web_env) as (process, url):
        directory = metrics_directory(process)
        assert port != int(web_env["PORT"])
        before = scrape(port)

        uploaded = httpx.put(f"{url}/api/files/data.bin", content=data, headers=auth, timeout=30).json()
        file_id, share = uploaded["file"]["id"], uploaded["share"]["token"]
        assert httpx.get(f"{url}/api/files/{file_id}/content", headers=auth).content == data
        assert httpx.get(f"{url}/s/{share}/download").content == data
        public = httpx.get(f"{url}/metrics")
        healthz = _until_every_worker_answered(process, url, directory)
        after = scrape(port)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert public.status_code == 404, "no token: /metrics does not exist on the public port"
    assert moved("satchel_http_requests_total", method="GET", route="/healthz", status="200") == healthz
    assert moved("satchel_http_requests_total", method="PUT", route="/api/files/{file_id}", status="201") == 1
    assert moved("satchel_http_requests_total", route="/s/{token}/download", status="200") == 1
    assert moved("satchel_http_requests_total", route="<unmatched>", status="404") == 1
    assert moved("satchel_http_request_duration_seconds_count", route="/healthz") == healthz
    assert moved("satchel_upload_bytes_total") == len(data)
    assert moved("satchel_download_bytes_total") == 2 * len(data)
    assert value(after, "satchel_build_info", release=web_env["RELEASE_ID"]) == 1
    assert share not in after and token not in after
    assert not directory.exists(), "the private metrics directory goes with the process"


def test_a_killed_web_worker_takes_its_live_gauges_but_never_its_counts(web_env: dict[str, str]) -> None:
    port = int(web_env["SATCHEL_METRICS_PORT"])
    web_env["SATCHEL_METRICS_TOKEN"] = token = uuid.uuid4().hex
    with running_web(web_env) as (process, url):
        directory = metrics_directory(process)
        _until_every_worker_answered(process, url, directory)
        before = scrape(port)
        victim = min(workers_of(process))
        assert victim in pids_with(directory, "gauge_livemax")

        os.kill(victim, signal.SIGKILL)
        process.wait_for(
            lambda: len(workers_of(process) - {victim}) == 2 and victim not in pids_with(directory, "gauge_livemax"),
            what="a replacement worker, and the dead one's live gauges gone",
        )
        process.wait_http(f"{url}/healthz")
        after = scrape(port)
        public = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text  # any worker answers
        counted = served_by(directory)

    requests, healthz = "satchel_http_requests_total", {"method": "GET", "route": "/healthz", "status": "200"}
    assert value(after, requests, **healthz) >= value(before, requests, **healthz)
    assert value(after, requests) >= value(before, requests)
    assert victim in counted, "a dead worker's counts stay in the sum"
    assert value(public, requests, **healthz) == value(after, requests, **healthz), "the token route sums all workers"
    assert value(after, "satchel_breaker_open", service="database") == 0
    assert not directory.exists()


@pytest.fixture
def worker_env(base_env: dict[str, str], own_database: str) -> Iterator[dict[str, str]]:
    parts = urlsplit(base_env["REDIS_URL"])  # a broker database of its own: other tests' workers never take our jobs
    broker = urlunsplit(parts._replace(path="/11" if parts.path != "/11" else "/10"))
    yield {**base_env, "DATABASE_URL": own_database, "BROKER_URL": broker, "SATCHEL_METRICS_PORT": str(free_port())}
    redis.Redis.from_url(broker).flushdb()  # the media job's message, which no worker here takes


def _add_job(conn: psycopg.Connection, *, queue: str, payload: dict[str, object], max_attempts: int = 5) -> str:
    job_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO jobs (id, kind, queue, payload, max_attempts) VALUES (%s, 'ping', %s, %s, %s)",
        (job_id, queue, json.dumps(payload), max_attempts),
    )
    return job_id


@pytest.mark.xdist_group("broker")
def test_a_worker_shows_its_jobs_by_queue_and_outcome_and_the_outbox_backlog(worker_env: dict[str, str]) -> None:
    port = int(worker_env["SATCHEL_METRICS_PORT"])
    worker = SatchelProcess("worker", "--queues", "default", "--concurrency", "1", env=worker_env)
    try:
        directory = metrics_directory(worker)
        worker.wait_for(lambda: any("ready" in line for line in worker.lines), what="worker ready")
        with psycopg.connect(worker_env["DATABASE_URL"], autocommit=True) as conn:
            _add_job(conn, queue="default", payload={"delay": 0})
            _add_job(conn, queue="default", payload={"delay": "soon"}, max_attempts=1)  # float("soon") fails
            _add_job(conn, queue="media", payload={})  # published, but this worker does not take media
            with psycopg.connect(worker_env["DATABASE_URL"]) as holder:  # a row lock the relay's SKIP LOCKED skips
                held = _add_job(conn, queue="mail", payload={})
                holder.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", (held,))

                def settled() -> bool:
                    text = scrape(port)
                    return (
                        value(text, "satchel_jobs_total") == 2
                        and value(text, "satchel_jobs_waiting", queue="media") == 1
                    )

                worker.wait_for(settled, what="both jobs run and the media job published")
                text = scrape(port)
        assert value(text, "satchel_jobs_total", queue="default", job="ping", outcome="done") == 1
        assert value(text, "satchel_jobs_total", queue="default", job="ping", outcome="failed") == 1
        assert value(text, "satchel_job_duration_seconds_count", queue="default", job="ping") == 2
        assert value(text, "satchel_jobs_outbox_backlog", queue="mail") == 1
        assert value(text, "satchel_jobs_outbox_backlog", queue="default") == 0
        assert value(text, "satchel_jobs_waiting", queue="default") == 0
        assert value(text, "satchel_build_info", release=worker_env["RELEASE_ID"]) == 1
        assert {"database", "redis", "storage"} <= {
            s.labels["service"]
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "satchel_breaker_open"
        }
        ran_jobs = {
            pid
            for pid in pids_with(directory, "counter")
            if value_in_file(directory / f"counter_{pid}.db", "satchel_jobs_total") > 0
        }
        assert ran_jobs and worker.process.pid not in ran_jobs, "a pool process counted them; the main process serves"
    finally:
        worker.stop()
    assert worker.process.returncode == 0
    assert not directory.exists(), "the private metrics directory goes with the worker"


def test_a_taken_metrics_port_stops_the_process_and_leaves_no_directory(base_env: dict[str, str]) -> None:
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    never_a_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # a process that is gone for good
    abandoned = base / f"satchel-metrics-{never_a_pid}-killed"  # as a SIGKILLed process leaves it
    abandoned.mkdir()
    with socket.create_server(("0.0.0.0", 0)) as taken:
        env = {**base_env, "SATCHEL_METRICS_PORT": str(taken.getsockname()[1])}
        for args in (("web",), ("worker", "--concurrency", "1")):
            process = SatchelProcess(*args, env=env)
            assert process.wait(60) == 1, process.output()
            assert process.wait_for_event("metrics.port_unavailable")["port"] == taken.getsockname()[1]
            assert not metrics_directory(process).exists()
    assert not abandoned.exists(), "a dead process's directory is cleared at the next start"
