"""The job queue (factor IV, VIII): jobs go to Celery over ``BROKER_URL``, by task name."""

from __future__ import annotations

from celery import Celery

QUEUES = ("default", "mail", "scan", "media")


class CeleryJobPublisher:
    """Publishes by task name, so a publishing process never imports task code."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, task: str, *, queue: str, job_id: str, kwargs: dict[str, object]) -> None:
        if queue not in QUEUES:
            raise ValueError(f"unknown queue {queue!r}")
        self._app.send_task(task, kwargs=kwargs, queue=queue, task_id=job_id)
