"""Workers that die, brokers that vanish, sweeps that race: nothing is lost, nothing runs twice."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis

from satchel.runtime.embedded import EmbeddedRedis

from support.processes import SatchelProcess, create_account, run_satchel

pytestmark = [pytest.mark.xdist_group("broker"), pytest.mark.timeout(240)]


def _job_env(base_env: dict[str, str], own_database: str, broker: str) -> dict[str, str]:
    return {
        **base_env,
        "DATABASE_URL": own_database,
        "BROKER_URL": broker,
        "SATCHEL_JOB_RECOVERY_INTERVAL": "1",
        "SATCHEL_SWEEP_INTERVAL": "0",
    }


def _redis_broker(base_env: dict[str, str]) -> str:
    parts = urlsplit(base_env["REDIS_URL"])
    return urlunsplit(parts._replace(path="/15" if parts.path != "/15" else "/14"))


def _ready(process: SatchelProcess) -> None:
    process.wait_for(lambda: any("ready" in line for line in process.lines), what="worker ready")


def _start_job(workers: list[SatchelProcess], env: dict[str, str], delay: int) -> tuple[str, SatchelProcess]:
    """Enqueue a ping job of ``delay`` seconds; returns it once one of ``workers`` has started it, with that one."""
    published = run_satchel("jobs", "ping", "--delay", str(delay), "--wait", "0", env=env)
    job_id: str = json.loads(published.stdout.splitlines()[-1])["job_id"]

    def running(worker: SatchelProcess) -> bool:
        return any(e.get("event") == "job.started" and e.get("job_id") == job_id for e in worker.events_so_far())

    workers[0].wait_for(lambda: any(map(running, workers)), what=f"job {job_id} to start")
    return job_id, next(w for w in workers if running(w))


def _job(database_url: str, job_id: str) -> tuple[str, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT status, attempts FROM jobs WHERE id = %s", [job_id]).fetchone()
    assert row is not None
    return row[0], row[1]


@pytest.mark.parametrize("broker", ["redis", "amqp"])
def test_a_job_whose_worker_is_killed_is_completed_once_by_another(
    broker: str, base_env: dict[str, str], own_database: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("amqp_url") if broker == "amqp" else _redis_broker(base_env)
    env = _job_env(base_env, own_database, url)
    workers = [SatchelProcess("worker", "--concurrency", "1", env=env) for _ in "ab"]
    try:
        for worker in workers:
            _ready(worker)  # both ready first: the kill comes at once, well before the job could end
        job_id, first = _start_job(workers, env, delay=4)
        [second] = [w for w in workers if w is not first]
        os.killpg(first.process.pid, signal.SIGKILL)  # the worker, its pool and its relay, mid-job
        first.wait(10)

        marker = f"satchel:ping:{job_id}"
        client = redis.Redis.from_url(env["REDIS_URL"])
        second.wait_for(lambda: client.get(marker + ":effects") is not None, timeout=60, what="the other to finish")
        time.sleep(2)  # any duplicate delivery would land now
        assert int(client.get(marker + ":effects")) == 1, "the side effect happened once"
        status, attempts = _job(own_database, job_id)
        assert status == "done" and attempts == 2
    finally:
        for worker in workers:
            worker.stop()


def test_uploads_succeed_while_the_broker_is_down_and_their_jobs_run_when_it_returns(
    base_env: dict[str, str], own_database: str, owned_redis: EmbeddedRedis
) -> None:
    env = _job_env(base_env, own_database, owned_redis.url)
    token = create_account(env, "offline@example.test")
    web = SatchelProcess("web", env=env)
    worker = None
    try:
        base = f"http://127.0.0.1:{env['PORT']}"
        web.wait_http(f"{base}/healthz")
        owned_redis.stop()  # the broker goes away
        ids = []
        for i in range(3):
            response = httpx.put(
                f"{base}/api/files/photo-{i}.gif",
                content=b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00"
                b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "image/gif"},
                params={"share": "false"},
            )
            assert response.status_code == 201, "uploads never wait for the broker"
            ids.append(response.json()["file"]["id"])
        worker = SatchelProcess("worker", env=env)
        time.sleep(3)  # the relay tries, fails, keeps the jobs
        with psycopg.connect(own_database) as conn:
            pending = conn.execute("SELECT count(*) FROM jobs WHERE status = 'pending'").fetchone()
        assert pending == (3,)

        owned_redis.start()  # the broker is back, on the same address

        def all_made() -> bool:
            files = [httpx.get(f"{base}/api/files/{i}", headers={"Authorization": f"Bearer {token}"}) for i in ids]
            return all(f.json()["has_thumbnail"] for f in files)

        worker.wait_for(all_made, timeout=90, what="every thumbnail job to run")
        with psycopg.connect(own_database) as conn:
            statuses = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        assert statuses == [("done", 3)]
    finally:
        web.stop()
        if worker:
            worker.stop()


def test_with_three_workers_exactly_one_sweep_runs_per_slot(base_env: dict[str, str], own_database: str) -> None:
    env = {**_job_env(base_env, own_database, _redis_broker(base_env)), "SATCHEL_SWEEP_INTERVAL": "1"}
    workers = [SatchelProcess("worker", "--concurrency", "1", env=env) for _ in range(3)]
    try:
        for worker in workers:
            _ready(worker)
        time.sleep(5)
    finally:
        for worker in workers:
            worker.stop()
    done = [e for w in workers for e in w.events() if e.get("event") == "sweep.done"]
    with psycopg.connect(own_database) as conn:
        rows = conn.execute("SELECT slot, started_at, finished_at FROM sweeps ORDER BY slot").fetchall()
    assert len(rows) >= 3
    assert sorted(e["slot"] for e in done) == [r[0] for r in rows], "one sweep per slot, whoever ran it"
    for earlier, later in itertools.pairwise(rows):
        assert earlier[2] <= later[1], "sweeps never overlap"


def test_a_job_outliving_worker_grace_is_handed_back_and_finished_elsewhere(
    base_env: dict[str, str], own_database: str
) -> None:
    env = {**_job_env(base_env, own_database, _redis_broker(base_env)), "WORKER_GRACE": "1"}
    first = SatchelProcess("worker", "--concurrency", "1", env=env)
    second = None
    try:
        _ready(first)
        job_id, _ = _start_job([first], env, delay=6)
        stopped_at = time.monotonic()
        first.signal(signal.SIGTERM)
        code = first.wait(30)
        assert time.monotonic() - stopped_at < 5, "the worker did not wait out the 6 s job: grace is 1 s"
        assert code == 0
        second = SatchelProcess("worker", "--concurrency", "1", env=env)
        client = redis.Redis.from_url(env["REDIS_URL"])
        effects = f"satchel:ping:{job_id}:effects"  # written just after the marker: wait for it, not the marker
        second.wait_for(lambda: client.get(effects) is not None, timeout=60, what="the rerun")
        time.sleep(1)  # a second run would add to it now
        assert int(client.get(effects)) == 1
    finally:
        first.stop()
        if second:
            second.stop()
