"""The outbox relay and the sweep scheduler, one per `satchel worker`, safe to run N at once.

- Publishes jobs whose transaction committed (woken at once when one is added, and every
  second regardless), and re-publishes any published job that never started.
- Hands back jobs whose worker died mid-run: a running job nobody holds has lost its worker.
- Runs the expiry sweep once per slot of ``SATCHEL_SWEEP_INTERVAL`` seconds across
  all workers (``ports.SweepLedger``).

Relays never take the same due job at the same moment (``ports.JobQueue.due``); a duplicate
delivery is harmless anyway (``runner``). Everything the relay asks of the database goes through
``services.job_queue`` and ``services.sweeps``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from satchel.bootstrap import Services, open_services
from satchel.ports.health import ServiceUnavailable
from satchel.ports.jobs import JobPublisher
from satchel.runtime.logging import configure_logging, get_logger
from satchel.settings import Settings, load_settings

log = get_logger("satchel.relay")
BATCH = 100


class Relay:
    def __init__(self, settings: Settings, services: Services, publisher: JobPublisher) -> None:
        self.settings = settings
        self.services = services
        self.publisher = publisher
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._last_recovery = 0.0

    async def publish_due(self) -> int:
        republish_after = timedelta(seconds=self.settings.job_republish_after)
        async with self.services.job_queue.due(limit=BATCH, republish_after=republish_after) as batch:
            published = []
            for job in batch.jobs:
                try:
                    await asyncio.to_thread(self.publisher.publish, job.id, queue=job.queue)
                except Exception as exc:  # broker down: keep them pending, try again next tick
                    log.warning("relay.broker_unavailable", error=type(exc).__name__, pending=len(batch.jobs))
                    break
                published.append(job.id)
            await batch.published(published)
        if published:
            log.info("relay.published", count=len(published))
        return len(published)

    async def recover_orphans(self) -> int:
        """Running jobs whose worker died: nobody holds them. Back to pending they go."""
        recovered = await self.services.job_queue.recover_orphans()
        if recovered:
            log.warning("relay.recovered_orphans", count=recovered)
        return recovered

    async def maybe_sweep(self) -> bool:
        """Run the expiry sweep if this worker wins the current slot."""
        interval = self.settings.sweep_interval
        if interval <= 0:
            return False
        slot = int(time.time() // interval)
        purged: dict[str, Any] = {}

        async def sweep() -> dict[str, Any]:
            report = await self.services.expiry.purge_expired()
            purged.update(
                shares=len(report.shares), files=len(report.files), uploads=report.uploads, history=len(report.history)
            )
            return purged

        if not await self.services.sweeps.sweep_once(slot, self.name, sweep):
            return False  # another worker swept this slot, or is sweeping it right now
        log.info("sweep.done", slot=slot, worker=self.name, **purged)
        return True

    async def run(self, should_stop: Any) -> None:
        """Relay until told to stop. A database outage pauses the relay, never ends it: jobs wait in the
        outbox, and the relay listens again once PostgreSQL answers."""
        log.info("relay.started", worker=self.name)
        while not should_stop():
            try:
                await self._listen_and_relay(should_stop)
            except ServiceUnavailable as exc:
                cause = exc.__cause__ or exc
                log.warning("relay.database_unavailable", error=type(cause).__name__, detail=str(cause)[:300])
                await asyncio.sleep(2)

    async def _listen_and_relay(self, should_stop: Any) -> None:
        async with self.services.job_queue.wakeups() as woken:
            while not should_stop():
                try:
                    await self._tick()
                except Exception as exc:  # a database hiccup must not end the relay
                    log.warning("relay.tick_failed", error=type(exc).__name__, detail=str(exc)[:300])
                    await asyncio.sleep(1)
                await woken(1.0)  # a lost connection raises here

    async def _tick(self) -> None:
        await self.publish_due()
        if time.monotonic() - self._last_recovery > self.settings.job_recovery_interval:
            self._last_recovery = time.monotonic()
            await self.recover_orphans()
        await self.maybe_sweep()


def relay_main(parent_pid: int, publisher_for: Callable[[Settings], JobPublisher]) -> None:
    """Entry point of the relay process that `satchel worker` forks beside Celery.

    Everything the relay holds (settings, logging, connections, its event loop and the publisher that
    ``publisher_for`` makes) is made here, in the child: nothing of the parent's is reused but the imported code.
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

    async def main() -> None:
        services = open_services(settings)
        try:
            relay = Relay(settings, services, publisher_for(settings))
            await relay.run(lambda: stopping or os.getppid() != parent_pid)
        finally:
            await services.close()

    asyncio.run(main())
    log.info("relay.stopped")
    from satchel.runtime.lifecycle import exit_now

    exit_now(0)
