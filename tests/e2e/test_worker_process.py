"""``satchel worker``: a real Celery worker consuming from Redis or RabbitMQ."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from support.processes import SatchelProcess, run_satchel

pytestmark = pytest.mark.xdist_group("broker")  # workers share queue names on a broker: one test at a time


@pytest.fixture(params=["redis", "amqp"])
def broker_env(request: pytest.FixtureRequest, base_env: dict[str, str], own_database: str) -> dict[str, str]:
    if request.param == "amqp":
        broker = request.getfixturevalue("amqp_url")
    else:  # a Redis database of its own, so the job markers and the queue never mix
        parts = urlsplit(base_env["REDIS_URL"])
        broker = urlunsplit(parts._replace(path="/15" if parts.path != "/15" else "/14"))
    return {**base_env, "BROKER_URL": broker, "DATABASE_URL": own_database}


@pytest.fixture
def worker(broker_env: dict[str, str]) -> Iterator[SatchelProcess]:
    process = SatchelProcess("worker", "--concurrency", "1", env=broker_env)
    process.wait_for(lambda: any("ready" in line for line in process.lines), what="worker ready")
    yield process
    process.stop()


def _started(worker: SatchelProcess, job_id: str) -> bool:
    return any(e.get("event") == "job.started" and e.get("job_id") == job_id for e in worker.events_so_far())


def _marker(env: dict[str, str], job_id: str) -> dict[str, object] | None:
    raw = redis.Redis.from_url(env["REDIS_URL"]).get(f"satchel:ping:{job_id}")
    return json.loads(raw) if raw else None


def test_a_published_job_runs_on_the_worker(worker: SatchelProcess, broker_env: dict[str, str]) -> None:
    result = run_satchel("jobs", "ping", "--wait", "30", env=broker_env)
    assert result.returncode == 0, result.stderr
    published, done = (json.loads(line) for line in result.stdout.splitlines()[-2:])
    assert done["job_id"] == published["job_id"]
    assert done["release"] == broker_env["RELEASE_ID"]
    finished = worker.wait_for_event("job.finished")
    assert finished["process"] == "worker" and finished["job_id"] == published["job_id"]


def test_sigterm_lets_the_running_job_finish_then_exits_zero(
    worker: SatchelProcess, broker_env: dict[str, str]
) -> None:
    published = run_satchel("jobs", "ping", "--delay", "3", "--wait", "0", env=broker_env)
    job_id = json.loads(published.stdout.splitlines()[-1])["job_id"]
    worker.wait_for(lambda: _started(worker, job_id), what="the job to start")
    started = time.monotonic()
    worker.signal(signal.SIGTERM)

    assert worker.wait(60) == 0
    assert time.monotonic() - started > 1.5, "the worker waited for the job instead of dropping it"
    assert _marker(broker_env, job_id) is not None, "the job finished before the process exited"
    events = worker.events()  # every line JSON, Celery's own included
    assert {e["process"] for e in events} == {"worker", "relay"}
    assert any(e["event"] == "job.finished" and e["job_id"] == job_id for e in events)


def test_unknown_queue_is_refused(base_env: dict[str, str]) -> None:
    result = run_satchel("worker", "--queues", "default,video", env=base_env)
    assert result.returncode == 2
    assert "video" in result.stderr and "default, mail, scan, media" in result.stderr
