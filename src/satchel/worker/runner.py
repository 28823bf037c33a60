"""Running one job from the outbox: once, whatever the broker delivers, with retries and parking.

A worker holds a PostgreSQL advisory lock on the job while it runs it. The lock
is the job's heartbeat: it ends with the worker's connection, so a killed
worker's job can be told apart from a slow one (see ``relay``), and two
deliveries of the same job never run at the same time.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import traceback
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from satchel.adapters.db.engine import lock_key
from satchel.adapters.db.schema import jobs
from satchel.bootstrap import Services
from satchel.domain.clock import utcnow
from satchel.runtime.logging import get_logger
from satchel.runtime.metrics.instruments import record_job
from satchel.services.background import Handler, handlers

log = get_logger("satchel.jobs")
PING_KEY = "satchel:ping:{job_id}"
RUNNABLE = ("pending", "published", "running")  # running = an earlier worker died holding it


def backoff(attempt: int, *, base: float = 2.0, cap: float = 600.0) -> timedelta:
    """Exponential backoff with jitter: ~2 s, 4 s, 8 s … up to ten minutes."""
    delay = min(cap, base * 2 ** (attempt - 1))
    return timedelta(seconds=delay * random.uniform(0.8, 1.2))


async def ping(services: Services, job_id: str, payload: dict[str, Any]) -> str:
    """A diagnostic job: wait, then leave one marker in Redis; a rerun leaves no second one."""
    log.info("job.ping.working", job_id=job_id, delay=payload.get("delay", 0))
    await asyncio.sleep(float(payload.get("delay", 0)))
    marker = json.dumps({
        "job_id": job_id, "release": services.settings.release_id, "pid": os.getpid(),
        "finished_at": utcnow().isoformat(),
    })  # fmt: skip
    key = PING_KEY.format(job_id=job_id)
    if await services.redis.client.set(key, marker, nx=True, ex=3600):
        await services.redis.client.incr(key + ":effects")
        await services.redis.client.expire(key + ":effects", 3600)
    return "pong"


def job_handlers(services: Services) -> dict[str, Handler]:
    return {**handlers(services.background), "ping": lambda job_id, p: ping(services, job_id, p)}


async def _claim(conn: AsyncConnection, job_id: str) -> Any:
    row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id).with_for_update())).one_or_none()
    if row is None or row.status not in RUNNABLE:
        return None
    now = utcnow()
    if row.status == "pending" and row.available_at > now:
        return None  # a stale delivery of a job waiting out its backoff
    await conn.execute(
        sa.update(jobs).where(jobs.c.id == job_id).values(status="running", attempts=row.attempts + 1, started_at=now)
    )
    return row


async def run_job(services: Services, job_id: str) -> str:
    """Run the job if nobody else is, record the outcome; returns what happened, for logs and tests."""
    engine = services.database.engine
    key = lock_key(job_id)
    async with engine.connect() as lock_conn:
        if not await lock_conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
            return "busy"  # another worker is running it right now
        await lock_conn.commit()
        try:
            return await _run_locked(services, job_id)
        finally:
            # Pooled connections outlive the job: the lock must be given back, not left to a disconnect.
            await lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
            await lock_conn.commit()


async def _run_locked(services: Services, job_id: str) -> str:
    engine = services.database.engine
    async with engine.begin() as conn:
        row = await _claim(conn, job_id)
    if row is None:
        return "skipped"
    attempt = row.attempts + 1
    log.info("job.started", job_id=job_id, kind=row.kind, attempt=attempt)
    began = time.perf_counter()
    try:
        outcome = str(await job_handlers(services)[row.kind](job_id, dict(row.payload)))
    except Exception as exc:
        took = time.perf_counter() - began
        status = await _failed(services, row, attempt, exc)
        record_job(row.queue, row.kind, "retrying" if status == "pending" else "failed", took)
        return status
    took = time.perf_counter() - began
    async with engine.begin() as conn:
        done = {"status": "done", "finished_at": utcnow(), "last_error": None}
        await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**done))
    record_job(row.queue, row.kind, "done", took)
    log.info("job.finished", job_id=job_id, kind=row.kind, outcome=outcome)
    return outcome


async def _failed(services: Services, row: Any, attempt: int, exc: Exception) -> str:
    error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
    now = utcnow()
    if attempt >= row.max_attempts:
        values: dict[str, Any] = {"status": "failed", "finished_at": now, "last_error": error}
        log.error("job.failed", job_id=row.id, kind=row.kind, attempt=attempt, error=error)
        if row.kind == "scan":  # a file must not stay "pending" forever: say the scan could not finish
            await services.background.scan_gave_up(row.payload["file_id"])
    else:
        values = {"status": "pending", "available_at": now + backoff(attempt), "last_error": error}
        log.warning("job.retrying", job_id=row.id, kind=row.kind, attempt=attempt, error=error)
    async with services.database.engine.begin() as conn:
        await conn.execute(sa.update(jobs).where(jobs.c.id == row.id).values(**values))
    return str(values["status"])
