"""The one Celery task: run a job from the outbox by its id. Idempotent by construction (``runner``)."""

from __future__ import annotations

import asyncio

from celery import shared_task

from satchel.bootstrap import open_services
from satchel.settings import get_settings
from satchel.worker.runner import run_job


@shared_task(name="satchel.run_job", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job_task(job_id: str) -> str:
    async def run() -> str:
        # Each job gets its own event loop here, so no connection may outlive it: no pools.
        services = open_services(get_settings(), pooled=False)
        try:
            return await run_job(services, job_id)
        finally:
            await services.close()

    return asyncio.run(run())
