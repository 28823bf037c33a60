"""The one Celery task: run a job from the outbox by its id. Idempotent by construction (``runner``)."""

from __future__ import annotations

import asyncio

from celery import shared_task

from satchel.adapters.jobs import RUN_JOB
from satchel.bootstrap import Services, open_services
from satchel.settings import get_settings
from satchel.worker.runner import run_job

_loop: asyncio.AbstractEventLoop | None = None
_services: Services | None = None


def _runtime() -> tuple[asyncio.AbstractEventLoop, Services]:
    """One event loop and one set of pooled connections per worker process, made on its first job.

    Created lazily, so nothing is inherited across the pool's fork; kept, so jobs reuse connections.
    """
    global _loop, _services
    if _loop is None or _services is None:
        _loop = asyncio.new_event_loop()
        _services = open_services(get_settings())
    return _loop, _services


@shared_task(name=RUN_JOB, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def run_job_task(job_id: str) -> str:
    loop, services = _runtime()
    return loop.run_until_complete(run_job(services, job_id))
