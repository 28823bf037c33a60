"""The job queue (factor IV, VIII): jobs go to Celery over ``BROKER_URL``, by task name."""

from __future__ import annotations

from typing import Any, Protocol

QUEUES = ("default", "mail", "scan", "media")
RUN_JOB = "satchel.run_job"  # the one task: run an outbox job by its id (``worker.tasks``)


class Broker(Protocol):
    """What publishing needs of a Celery app."""

    def send_task(self, name: str, **options: Any) -> Any: ...


class CeleryJobPublisher:
    """``ports.JobPublisher`` on Celery. Publishes by task name, so a publishing process never imports task code."""

    def __init__(self, app: Broker) -> None:
        self._app = app

    def publish(self, job_id: str, *, queue: str) -> None:
        # The job id is the task id, and travels as a header too, so the broker's view names the outbox row.
        self._app.send_task(
            RUN_JOB, args=[job_id], queue=queue, task_id=job_id, retry=False, headers={"satchel_job": job_id}
        )
