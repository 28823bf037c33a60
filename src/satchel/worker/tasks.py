"""The jobs the worker tier runs. Each is idempotent, keyed by its job id."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from functools import lru_cache

import redis
from celery import shared_task

from satchel.runtime.logging import get_logger
from satchel.settings import get_settings

log = get_logger("satchel.jobs")
PING_KEY = "satchel:ping:{job_id}"


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=5)


@shared_task(name="satchel.ping")
def ping(job_id: str, delay: float = 0.0) -> None:
    """Prove the worker tier works end to end: wait ``delay`` seconds, then leave a marker in Redis."""
    log.info("job.started", job="ping", job_id=job_id)
    time.sleep(delay)
    marker = {
        "job_id": job_id,
        "release": get_settings().release_id,
        "pid": os.getpid(),
        "finished_at": datetime.now(UTC).isoformat(),
    }
    _redis().set(PING_KEY.format(job_id=job_id), json.dumps(marker), ex=3600)
    log.info("job.finished", job="ping", job_id=job_id)
