"""The outbox relay and the sweep scheduler, one per `satchel worker`, safe to run N at once.

- Publishes jobs whose transaction committed (woken at once by NOTIFY, and every
  second regardless), and re-publishes any published job that never started.
- Hands back jobs whose worker died mid-run: a running job whose advisory lock
  nobody holds has lost its worker.
- Runs the expiry sweep once per slot of ``SATCHEL_SWEEP_INTERVAL`` seconds across
  all workers: the slot's row can be inserted once, under an advisory lock.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so relays never publish the same
job at the same moment; a duplicate delivery is harmless anyway (``runner``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from datetime import timedelta
from typing import Any

import psycopg
import sqlalchemy as sa
from celery import Celery

from satchel.adapters.db.engine import lock_key, sqlalchemy_url
from satchel.adapters.db.repositories import JOBS_CHANNEL
from satchel.adapters.db.schema import jobs, sweeps
from satchel.bootstrap import Services, open_services
from satchel.runtime.logging import configure_logging, get_logger
from satchel.settings import Settings, load_settings

log = get_logger("satchel.relay")
BATCH = 100
SWEEP_LOCK = 7431002


class Relay:
    def __init__(self, settings: Settings, services: Services, celery: Celery) -> None:
        self.settings = settings
        self.services = services
        self.celery = celery
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._last_recovery = 0.0

    async def publish_due(self) -> int:
        republish = sa.func.now() - timedelta(seconds=self.settings.job_republish_after)
        due = sa.or_(
            sa.and_(jobs.c.status == "pending", jobs.c.available_at <= sa.func.now()),
            sa.and_(jobs.c.status == "published", jobs.c.published_at < republish),
        )
        query = (
            sa.select(jobs.c.id, jobs.c.queue)
            .where(due)
            .order_by(jobs.c.created_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        async with self.services.database.engine.begin() as conn:
            rows = (await conn.execute(query)).all()
            published = []
            for row in rows:
                try:
                    await asyncio.to_thread(self._send, row.id, row.queue)
                except Exception as exc:  # broker down: keep them pending, try again next tick
                    log.warning("relay.broker_unavailable", error=type(exc).__name__, pending=len(rows))
                    break
                published.append(row.id)
            if published:
                await conn.execute(
                    sa.update(jobs)
                    .where(jobs.c.id.in_(published))
                    .values(status="published", published_at=sa.func.now())
                )
        if published:
            log.info("relay.published", count=len(published))
        return len(published)

    def _send(self, job_id: str, queue: str) -> None:
        self.celery.send_task(
            "satchel.run_job", args=[job_id], queue=queue, task_id=job_id,
            retry=False, headers={"satchel_job": job_id},
        )  # fmt: skip

    async def recover_orphans(self) -> int:
        """Running jobs whose worker died: nobody holds their lock. Back to pending they go."""
        recovered = 0
        async with self.services.database.engine.connect() as conn:
            running = (await conn.execute(sa.select(jobs.c.id).where(jobs.c.status == "running"))).scalars().all()
            await conn.commit()
            for job_id in running:
                key = lock_key(job_id)
                if not await conn.scalar(sa.select(sa.func.pg_try_advisory_lock(key))):
                    continue  # alive: its worker holds the lock
                try:
                    result = await conn.execute(
                        sa.update(jobs)
                        .where(jobs.c.id == job_id, jobs.c.status == "running")
                        .values(status="pending", available_at=sa.func.now())
                    )
                    recovered += result.rowcount
                finally:
                    await conn.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
                    await conn.commit()
        if recovered:
            log.warning("relay.recovered_orphans", count=recovered)
        return recovered

    async def maybe_sweep(self) -> bool:
        """Run the expiry sweep if this worker wins the current slot."""
        interval = self.settings.sweep_interval
        if interval <= 0:
            return False
        slot = int(time.time() // interval)
        async with self.services.database.engine.begin() as conn:
            if not await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(SWEEP_LOCK))):
                return False  # another worker is sweeping right now
            won = await conn.scalar(
                sa.dialects.postgresql.insert(sweeps)
                .values(slot=slot, worker=self.name)
                .on_conflict_do_nothing()
                .returning(sweeps.c.slot)
            )
            if won is None:
                return False  # this slot was swept already
            report = await self.services.expiry.purge_expired()
            purged: dict[str, Any] = {
                "shares": len(report.shares), "files": len(report.files), "uploads": report.uploads,
            }  # fmt: skip
            await conn.execute(
                sa.update(sweeps).where(sweeps.c.slot == slot).values(finished_at=sa.func.now(), purged=purged)
            )
        log.info("sweep.done", slot=slot, worker=self.name, **purged)
        return True

    async def run(self, should_stop: Any) -> None:
        """Relay until told to stop. A database outage pauses the relay, never ends it: jobs wait in the
        outbox, and the relay listens again once PostgreSQL answers."""
        log.info("relay.started", worker=self.name)
        while not should_stop():
            try:
                await self._listen_and_relay(should_stop)
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("relay.database_unavailable", error=type(exc).__name__, detail=str(exc)[:300])
                await asyncio.sleep(2)

    async def _listen_and_relay(self, should_stop: Any) -> None:
        dsn = sqlalchemy_url(self.settings.database_url).replace("postgresql+psycopg://", "postgresql://")
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5) as listener:
            await listener.execute(f"LISTEN {JOBS_CHANNEL}")
            while not should_stop():
                try:
                    await self.publish_due()
                    if time.monotonic() - self._last_recovery > self.settings.job_recovery_interval:
                        self._last_recovery = time.monotonic()
                        await self.recover_orphans()
                    await self.maybe_sweep()
                except Exception as exc:  # a database hiccup must not end the relay
                    log.warning("relay.tick_failed", error=type(exc).__name__, detail=str(exc)[:300])
                    await asyncio.sleep(1)
                async for _ in listener.notifies(timeout=1.0, stop_after=1):  # a lost connection raises here
                    pass


def relay_main(parent_pid: int) -> None:
    """Entry point of the relay process that `satchel worker` forks beside Celery.

    Everything the relay holds (settings, logging, connections, its event loop and Celery client) is made
    here, in the child: nothing of the parent's is reused but the imported code.
    """
    import signal

    settings = load_settings()
    configure_logging(process="relay", release=settings.release_id, level=settings.log_level, fmt=settings.log_format)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when we stop

    from satchel.worker.app import create_celery

    async def main() -> None:
        services = open_services(settings)
        try:
            relay = Relay(settings, services, create_celery(settings))
            await relay.run(lambda: stopping or os.getppid() != parent_pid)
        finally:
            await services.close()

    asyncio.run(main())
    log.info("relay.stopped")
    from satchel.runtime.lifecycle import exit_now

    exit_now(0)
