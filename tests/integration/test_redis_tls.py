"""Redis over TLS: the certificate is checked unless the operator says the server's is self-signed.

A real Redis behind a TLS front with a certificate no authority signed, as hosted Redis add-ons have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from satchel.adapters.redis import Redis
from satchel.ports.health import ServiceUnavailable
from satchel.settings import Settings

from support.tls import tls_front


@pytest.fixture
def rediss_url(redis_url: str, tmp_path: Path) -> Iterator[str]:
    target = urlsplit(redis_url)
    with tls_front(target.port or 6379, tmp_path) as port:
        yield f"rediss://127.0.0.1:{port}{target.path}"


def ping(url: str, *, verify: bool) -> None:
    async def attempt() -> None:
        redis = Redis(url, timeout=2, verify_tls=verify)
        try:
            await redis.ping()
        finally:
            await redis.close()

    asyncio.run(attempt())


def test_a_self_signed_redis_certificate_is_refused_by_default(rediss_url: str) -> None:
    with pytest.raises(ServiceUnavailable):
        ping(rediss_url, verify=True)


def test_a_self_signed_redis_certificate_is_accepted_when_the_operator_says_so(rediss_url: str) -> None:
    ping(rediss_url, verify=False)


def test_the_worker_checks_the_brokers_certificate_unless_told_not_to(app_settings: Settings, rediss_url: str) -> None:
    from satchel.worker.app import create_celery

    checked = create_celery(app_settings.model_copy(update={"broker_url": rediss_url}))
    with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
        checked.connection_for_write().ensure_connection(max_retries=0)
    trusting = create_celery(app_settings.model_copy(update={"broker_url": rediss_url, "redis_tls_verify": False}))
    with trusting.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0)
