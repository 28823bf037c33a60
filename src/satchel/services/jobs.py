"""Jobs as operators see them: what ran, what failed, and running a failed one again."""

from __future__ import annotations

from typing import Any

from satchel.domain.accounts import User
from satchel.domain.audit import JOB_RETRIED, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import NotFound
from satchel.domain.jobs import Job
from satchel.ports.persistence import UnitOfWorkFactory


class JobsAdmin:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def recent(self, *, status: str | None = None, limit: int = 50) -> list[Job]:
        async with self._uow() as uow:
            return await uow.jobs.recent(status=status, limit=limit)

    async def enqueue(self, kind: str, payload: dict[str, Any], *, queue: str) -> str:
        async with self._uow() as uow:
            job_id = await uow.jobs.add(kind, payload, queue=queue)
            await uow.commit()
        return job_id

    async def retry(self, job_id: str, *, actor: User | None = None, client: str | None = None) -> None:
        """Put a failed job back in the outbox with a fresh set of attempts, recorded in the audit trail
        (by ``actor``, or by an operator at the command line when there is none)."""
        async with self._uow() as uow:
            job = await uow.jobs.get(job_id)
            if job is None or not await uow.jobs.retry(job_id):
                raise NotFound(f"No failed job {job_id}.")
            event = AuditEvent.of(
                JOB_RETRIED,
                utcnow(),
                actor=actor,
                subject=f"job:{job_id}",
                client=client,
                kind=job.kind,
                queue=job.queue,
                attempts=job.attempts,
            )
            await uow.audit.record(event)
            await uow.commit()
