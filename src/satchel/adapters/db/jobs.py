"""Jobs in SQL: the outbox a unit of work writes to, and the queue the worker tier takes its jobs from.

A worker holds a PostgreSQL advisory lock on a job while it runs it (``SqlJobQueue.hold``). The lock ends
with the worker's connection, so a killed worker's job can be told apart from a slow one
(``recover_orphans``), and two deliveries of the same job never run at the same time. Due jobs are taken
``FOR UPDATE SKIP LOCKED``: relays never publish the same job at the same moment.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from satchel.adapters.db.engine import Connection, lock_key, sqlalchemy_url
from satchel.adapters.db.schema import jobs, sweeps
from satchel.domain.jobs import DONE, FAILED, PENDING, PUBLISHED, RUNNING, UNFINISHED, Job
from satchel.ports.health import ServiceUnavailable
from satchel.ports.jobs import QueueBacklog

JOBS_CHANNEL = "satchel_jobs"
SWEEP_LOCK = 7431002


# Due: pending and past its backoff, as ``Job.may_start`` has it; the relay and the census both count by it.
_DUE = sa.and_(jobs.c.status == PENDING, jobs.c.available_at <= sa.func.now())


def _job(row: Any) -> Job:
    return Job(**row._mapping)


async def _notify(conn: Connection | AsyncConnection, job_id: str) -> None:
    """Wake the relays; they hear it only once the transaction commits."""
    await conn.execute(sa.select(sa.func.pg_notify(JOBS_CHANNEL, job_id)))


class SqlJobs:
    """The outbox, as a unit of work sees it. Adding a job also notifies the relay."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def add(self, kind: str, payload: dict[str, Any], *, queue: str, max_attempts: int = 5) -> str:
        job_id = secrets.token_hex(16)
        await self.conn.execute(
            sa.insert(jobs).values(id=job_id, kind=kind, queue=queue, payload=payload, max_attempts=max_attempts)
        )
        await _notify(self.conn, job_id)
        return job_id

    async def get(self, job_id: str) -> Job | None:
        row = (await self.conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).one_or_none()
        return _job(row) if row else None

    async def recent(self, *, status: str | None, limit: int) -> list[Job]:
        query = sa.select(jobs).order_by(jobs.c.created_at.desc()).limit(limit)
        if status:
            query = query.where(jobs.c.status == status)
        return [_job(r) for r in await self.conn.execute(query)]

    async def retry(self, job_id: str) -> bool:
        result = await self.conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id, jobs.c.status == FAILED)
            .values(status=PENDING, attempts=0, available_at=sa.func.now(), last_error=None, finished_at=None)
        )
        if result.rowcount == 1:
            await _notify(self.conn, job_id)
        return result.rowcount == 1


class _DueBatch:
    """Jobs taken to publish, their rows locked by the transaction ``conn`` until the batch ends."""

    def __init__(self, conn: AsyncConnection, due: list[Job]) -> None:
        self._conn = conn
        self.jobs = due

    async def published(self, job_ids: list[str]) -> None:
        if job_ids:
            await self._conn.execute(
                sa.update(jobs).where(jobs.c.id.in_(job_ids)).values(status=PUBLISHED, published_at=sa.func.now())
            )


class SqlJobQueue:
    """``ports.JobQueue`` on PostgreSQL: each step a short transaction of its own, outside any unit of work."""

    def __init__(self, engine: AsyncEngine, database_url: str) -> None:
        self._engine = engine
        self._database_url = database_url

    @asynccontextmanager
    async def hold(self, job_id: str) -> AsyncIterator[bool]:
        key = lock_key(job_id)
        async with self._engine.connect() as lock_conn:
            if not await lock_conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
                yield False  # another worker is running it right now
                return
            await lock_conn.commit()
            try:
                yield True
            finally:
                # Pooled connections outlive the job: the lock must be given back, not left to a disconnect.
                await lock_conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
                await lock_conn.commit()

    async def claim(self, job_id: str, now: datetime) -> Job | None:
        async with self._engine.begin() as conn:
            row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id).with_for_update())).one_or_none()
            if row is None or not (job := _job(row)).may_start(now):
                return None  # finished, parked, or a stale delivery of a job waiting out its backoff
            job.status, job.attempts, job.started_at = RUNNING, job.attempts + 1, now
            await conn.execute(
                sa.update(jobs).where(jobs.c.id == job_id).values(status=RUNNING, attempts=job.attempts, started_at=now)
            )
        return job

    async def finish(self, job_id: str, now: datetime) -> None:
        await self._set(job_id, status=DONE, finished_at=now, last_error=None)

    async def retry_later(self, job_id: str, at: datetime, error: str) -> None:
        await self._set(job_id, status=PENDING, available_at=at, last_error=error)

    async def park(self, job_id: str, now: datetime, error: str) -> None:
        await self._set(job_id, status=FAILED, finished_at=now, last_error=error)

    async def _set(self, job_id: str, **values: Any) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))

    @asynccontextmanager
    async def due(self, *, limit: int, republish_after: timedelta) -> AsyncIterator[_DueBatch]:
        republish = sa.func.now() - republish_after
        due = sa.or_(_DUE, sa.and_(jobs.c.status == PUBLISHED, jobs.c.published_at < republish))
        query = sa.select(jobs).where(due).order_by(jobs.c.created_at).limit(limit).with_for_update(skip_locked=True)
        async with self._engine.begin() as conn:
            yield _DueBatch(conn, [_job(r) for r in await conn.execute(query)])

    async def recover_orphans(self) -> int:
        recovered = 0
        async with self._engine.connect() as conn:
            running = (await conn.execute(sa.select(jobs.c.id).where(jobs.c.status == RUNNING))).scalars().all()
            await conn.commit()
            for job_id in running:
                recovered += await self._recover(conn, job_id)
        return recovered

    async def _recover(self, conn: AsyncConnection, job_id: str) -> int:
        """Hand the running job back if nobody holds it: taking its lock proves its worker is gone."""
        key = lock_key(job_id)
        if not await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
            return 0  # alive: its worker holds the lock
        try:
            result = await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status == RUNNING)
                .values(status=PENDING, available_at=sa.func.now())
            )
            return int(result.rowcount)
        finally:
            await conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
            await conn.commit()

    @asynccontextmanager
    async def wakeups(self) -> AsyncIterator[Callable[[float], Awaitable[None]]]:
        dsn = sqlalchemy_url(self._database_url).replace("postgresql+psycopg://", "postgresql://")
        try:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5) as listener:
                await listener.execute(f"LISTEN {JOBS_CHANNEL}")

                async def wait(seconds: float) -> None:
                    async for _ in listener.notifies(timeout=seconds, stop_after=1):  # a lost connection raises
                        pass

                yield wait
        except (psycopg.OperationalError, OSError) as exc:
            raise ServiceUnavailable("database", str(exc)[:300]) from exc


class SqlSweepLedger:
    """``ports.SweepLedger``: one row per slot, inserted by the one worker that sweeps it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def sweep_once(self, slot: int, worker: str, sweep: Callable[[], Awaitable[dict[str, Any]]]) -> bool:
        async with self._engine.begin() as conn:
            if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SWEEP_LOCK))):
                return False  # another worker is sweeping right now
            won = await conn.scalar(
                insert(sweeps).values(slot=slot, worker=worker).on_conflict_do_nothing().returning(sweeps.c.slot)
            )
            if won is None:
                return False  # this slot was swept already
            purged = await sweep()
            await conn.execute(
                sa.update(sweeps).where(sweeps.c.slot == slot).values(finished_at=sa.func.now(), purged=purged)
            )
        return True


_COUNTS = (
    sa.select(
        jobs.c.queue,
        sa.func.count().filter(_DUE).label("due"),
        sa.func.count().filter(jobs.c.status == PUBLISHED).label("waiting"),
    )
    .where(jobs.c.status.in_(UNFINISHED))  # the (status, available_at) index: no table scan
    .group_by(jobs.c.queue)
)


class SqlOutboxCensus:
    """``ports.OutboxCensus`` for a metrics scrape: blocking, on a connection of its own each time, and given
    at most ``timeout`` seconds by the server and by TCP alike."""

    def __init__(self, database_url: str, timeout: float) -> None:
        self._engine = sa.create_engine(
            sqlalchemy_url(database_url),
            poolclass=NullPool,  # a scrape every few seconds needs no pool, and leaves no idle connection
            connect_args={
                "connect_timeout": max(2, math.ceil(timeout)),  # libpq's own minimum is 2 s
                "options": f"-c statement_timeout={math.ceil(timeout * 1000)}",
                "application_name": "satchel-metrics",
                # A server that vanishes mid-query: TCP gives up in seconds, not the kernel's quarter-hour.
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": math.ceil(timeout * 1000) + 5000,
            },
        )

    def count(self) -> dict[str, QueueBacklog]:
        with self._engine.connect() as conn:
            return {row.queue: QueueBacklog(row.due, row.waiting) for row in conn.execute(_COUNTS)}
