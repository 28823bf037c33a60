"""The worker baseline: a bare Celery app on the same broker, so worker start-up is compared with Celery's own.

celery --workdir bench -A hello_celery worker --concurrency 2 --without-gossip --without-mingle
"""

from __future__ import annotations

import os

from celery import Celery

app = Celery("hello", broker=os.environ.get("BROKER_URL") or os.environ["REDIS_URL"])
app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)


@app.task(name="noop")
def noop() -> None:
    return None
