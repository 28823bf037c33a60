"""Background jobs: the outbox use cases write to, the broker it is published to, and the worker's side of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from satchel.domain.jobs import Job


class JobPublisher(Protocol):
    def publish(self, job_id: str, *, queue: str) -> None:
        """Hand the outbox's job to the broker, on ``queue``, for the worker tier; raise if it was not taken."""


class JobRepository(Protocol):
    async def add(self, kind: str, payload: dict[str, Any], *, queue: str, max_attempts: int = 5) -> str:
        """Record a job in the current transaction; it is published only if the transaction commits."""

    async def get(self, job_id: str) -> Job | None: ...
    async def recent(self, *, status: str | None, limit: int) -> list[Job]: ...
    async def retry(self, job_id: str) -> bool:
        """Put a parked (failed) job back in the outbox with fresh attempts; False when there is none."""


class DueJobs(Protocol):
    """A batch of jobs the relay took to publish; no other relay sees them until the batch ends."""

    jobs: list[Job]

    async def published(self, job_ids: list[str]) -> None:
        """Record that these jobs of the batch were handed to the broker."""


class JobQueue(Protocol):
    """The worker's side of the outbox: jobs taken from it, run, and their outcome recorded.

    While a worker runs a job it holds the job (``hold``). That hold is the job's heartbeat: it ends with
    the worker however the worker ends, so a job marked running that nobody holds has lost its worker.
    Each method is one short transaction of its own, apart from any unit of work.
    """

    def hold(self, job_id: str) -> AbstractAsyncContextManager[bool]:
        """Hold the job while the block runs: True, or False at once when another worker holds it."""

    async def claim(self, job_id: str, now: datetime) -> Job | None:
        """Mark the job running and count the attempt, if it ``may_start``; the job as claimed, or None."""

    async def finish(self, job_id: str, now: datetime) -> None:
        """The job is done."""

    async def retry_later(self, job_id: str, at: datetime, error: str) -> None:
        """The attempt failed: back to pending, due again ``at``."""

    async def park(self, job_id: str, now: datetime, error: str) -> None:
        """The last attempt failed: failed for good, until an operator retries it."""

    def due(self, *, limit: int, republish_after: timedelta) -> AbstractAsyncContextManager[DueJobs]:
        """Pending jobs that are due, and published ones no worker started within ``republish_after``,
        oldest first."""

    async def recover_orphans(self) -> int:
        """Hand running jobs that nobody holds back to pending; how many were."""

    def wakeups(self) -> AbstractAsyncContextManager[Callable[[float], Awaitable[None]]]:
        """A wait that returns when a job was added (or after the given seconds), for as long as the block runs.

        Raises ``ServiceUnavailable`` when the database cannot be listened to.
        """


@dataclass(frozen=True)
class QueueBacklog:
    """One queue's outbox: due jobs not yet handed to the broker, and handed ones no worker started."""

    due: int
    waiting: int


class OutboxCensus(Protocol):
    def count(self) -> dict[str, QueueBacklog]:
        """The outbox by queue, now (blocking; queues without unfinished jobs are left out)."""


class SweepLedger(Protocol):
    async def sweep_once(self, slot: int, worker: str, sweep: Callable[[], Awaitable[dict[str, Any]]]) -> bool:
        """Run ``sweep`` if no worker has swept ``slot`` yet nor is sweeping now, and record what it purged."""
