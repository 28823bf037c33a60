"""Running one job from the outbox: once, whatever the broker delivers, with retries and parking.

A worker holds the job while it runs it (``ports.JobQueue.hold``: a PostgreSQL advisory lock). The hold
is the job's heartbeat: it ends with the worker's connection, so a killed worker's job can be told apart
from a slow one (see ``relay``), and two deliveries of the same job never run at the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import traceback
from typing import Any

from satchel.bootstrap import Services
from satchel.domain.clock import utcnow
from satchel.domain.jobs import FAILED, PENDING, Job, JobStatus, backoff
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics.instruments import record_job
from satchel.services.background import Handler, handlers

log = get_logger("satchel.jobs")
PING_KEY = "satchel:ping:{job_id}"


async def ping(services: Services, job_id: str, payload: dict[str, Any]) -> str:
    """A diagnostic job: wait, then leave one marker in Redis; a rerun leaves no second one."""
    log.info("job.ping.working", job_id=job_id, delay=payload.get("delay", 0))
    await asyncio.sleep(float(payload.get("delay", 0)))
    marker = json.dumps(
        {
            "job_id": job_id,
            "release": services.settings.release_id,
            "pid": os.getpid(),
            "finished_at": utcnow().isoformat(),
        }
    )
    key = PING_KEY.format(job_id=job_id)
    if await services.redis.client.set(key, marker, nx=True, ex=3600):
        await services.redis.client.incr(key + ":effects")
        await services.redis.client.expire(key + ":effects", 3600)
    return "pong"


def job_handlers(services: Services) -> dict[str, Handler]:
    return {**handlers(services.background), "ping": lambda job_id, p: ping(services, job_id, p)}


async def run_job(services: Services, job_id: str) -> str:
    """Run the job if nobody else is, record the outcome; returns what happened, for logs and tests."""
    async with services.job_queue.hold(job_id) as held:
        if not held:
            return "busy"  # another worker is running it right now
        return await _run_held(services, job_id)


async def _run_held(services: Services, job_id: str) -> str:
    job = await services.job_queue.claim(job_id, utcnow())
    if job is None:
        return "skipped"
    log.info("job.started", job_id=job_id, kind=job.kind, attempt=job.attempts)
    began = time.perf_counter()
    try:
        outcome = str(await job_handlers(services)[job.kind](job_id, dict(job.payload)))
    except Exception as exc:
        took = time.perf_counter() - began
        status = await _failed(services, job, exc)
        record_job(job.queue, job.kind, "failed" if status == FAILED else "retrying", took)
        return status
    took = time.perf_counter() - began
    await services.job_queue.finish(job_id, utcnow())
    record_job(job.queue, job.kind, "done", took)
    log.info("job.finished", job_id=job_id, kind=job.kind, outcome=outcome)
    return outcome


async def _failed(services: Services, job: Job, exc: Exception) -> JobStatus:
    """Record the failed attempt: retry later, or park the job when it has no attempts left; its new status."""
    error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
    now = utcnow()
    if job.out_of_attempts:
        log.error("job.failed", job_id=job.id, kind=job.kind, attempt=job.attempts, error=error)
        await services.background.gave_up(job.kind, dict(job.payload))
        await services.job_queue.park(job.id, now, error)
        return FAILED
    log.warning("job.retrying", job_id=job.id, kind=job.kind, attempt=job.attempts, error=error)
    await services.job_queue.retry_later(job.id, now + backoff(job.attempts), error)
    return PENDING
